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
