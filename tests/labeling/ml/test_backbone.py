import torch

from labeling.ml.backbone import BarlowTwins, ModelConfig, load_backbone, resnet18_backbone


def test_it_uses_the_small_stem_at_64_px_and_below():
    assert ModelConfig(resolution=64).uses_small_stem
    assert not ModelConfig(resolution=96).uses_small_stem
    assert not ModelConfig(resolution=32, small_stem=False).uses_small_stem
    net = resnet18_backbone(small_stem=True)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, torch.nn.Identity)


def test_it_maps_images_to_512_features_and_zero_inits_residuals():
    net = resnet18_backbone(small_stem=True).eval()
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 512)
    assert all((block.bn2.weight == 0).all() for block in net.layer1)


def test_its_projector_has_the_configured_dims():
    model = BarlowTwins(ModelConfig(resolution=16, projector=(32, 24, 8)))
    layers = list(model.projector.net)
    assert [type(m).__name__ for m in layers] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]
    assert model.projector(torch.randn(4, 512)).shape == (4, 8)
    loss = model(torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16))
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_it_loads_the_backbone_from_a_model_state_dict():
    config = ModelConfig(resolution=16, projector=(8, 8))
    model = BarlowTwins(config)
    backbone = load_backbone(model.state_dict(), config)
    assert not backbone.training
    for name, value in backbone.state_dict().items():
        assert torch.equal(value, model.backbone.state_dict()[name])


def test_a_narrower_resnet18_scales_every_stage_and_keeps_torchvisions_layout():
    from labeling.ml.backbone import stage_widths
    from labeling.ml.embed import embed_images

    config = ModelConfig(resolution=16, small_stem=True, projector=(8, 8), width=16)
    model = BarlowTwins(config)
    net = model.backbone.eval()
    assert stage_widths(net) == (16, 32, 64, 128) and config.feature_dim == 128
    assert stage_widths(resnet18_backbone(small_stem=False)) == (64, 128, 256, 512)
    assert net.conv1.out_channels == 16 and net.conv1.stride == (1, 1)  # the small stem, at its width
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 128)
    assert all((block.bn2.weight == 0).all() for block in net.layer2)  # residuals start as the identity
    assert torch.isfinite(model(torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)))
    # The same names as ResNet-18's: a checkpoint loads, and the features have the stages' widths.
    loaded = load_backbone(model.state_dict(), config)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.state_dict().items())
    images = torch.randint(0, 255, (3, 16, 16, 3), dtype=torch.uint8).numpy()
    assert embed_images(loaded, images).shape == (3, 128)
    assert embed_images(loaded, images, multi_layer=True).shape == (3, 32 + 64 + 128)
