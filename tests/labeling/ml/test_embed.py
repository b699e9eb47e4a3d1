import io

import numpy as np
import torch
from PIL import Image

from labeling.ml.backbone import resnet18_backbone
from labeling.ml.cache import ImageCache
from labeling.ml.embed import embed_ids, embed_images, load_embeddings, save_embeddings
from labeling.ml.probe import fit_probe


def _backbone():
    torch.manual_seed(0)
    net = resnet18_backbone(small_stem=True)
    net.train()
    return net


def _images(n=6, size=8):
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_it_returns_float16_features_row_for_row():
    net, images = _backbone(), _images()
    features = embed_images(net, images, batch_size=4)
    assert features.shape == (6, 512) and features.dtype == np.float16
    # Eval mode: a row's features do not depend on the other rows in its batch.
    assert np.array_equal(embed_images(net, images[3:4]), features[3:4])


def test_it_aligns_features_with_the_callers_ids(tmp_path):
    cache = ImageCache(tmp_path, 8)
    images = _images(4)
    sources = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        sources.append(buf.getvalue())
    cache.add([10, 11, 12, 13], sources)
    net = _backbone()
    features = embed_ids(net, cache, np.array([12, 10]), batch_size=1)
    assert np.array_equal(features, embed_images(net, cache.read([12, 10]), batch_size=1))


def test_embedding_and_probing_leave_the_backbone_unchanged():
    net = _backbone()
    before = {k: v.clone() for k, v in net.state_dict().items()}  # weights and BN running stats
    features = embed_images(net, _images(24))
    labels = np.zeros((24, 2), dtype=bool)
    labels[::2, 0] = labels[::3, 1] = True
    fit_probe(features, labels)
    assert net.training  # its mode is restored too
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_it_saves_and_loads_ids_with_features(tmp_path):
    ids, features = np.array([3, 1, 2]), np.random.default_rng(0).normal(size=(3, 4)).astype(np.float16)
    save_embeddings(tmp_path / "e.npz", ids, features)
    loaded_ids, loaded = load_embeddings(tmp_path / "e.npz")
    assert loaded_ids.tolist() == [3, 1, 2] and np.array_equal(loaded, features)


def test_multi_layer_features_pool_three_stages_and_flip_tta_is_mirror_invariant():
    import torch

    from labeling.ml.backbone import resnet18_backbone
    from labeling.ml.embed import MULTI_LAYER_DIM, embed_images

    torch.manual_seed(0)
    net = resnet18_backbone(small_stem=False)
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    last = embed_images(net, images)
    multi = embed_images(net, images, multi_layer=True)
    assert multi.shape == (3, MULTI_LAYER_DIM)
    np.testing.assert_allclose(multi[:, -512:].astype(np.float32), last.astype(np.float32), atol=2e-3)
    mirrored = images[:, :, ::-1].copy()
    a = embed_images(net, images, multi_layer=True, flip_tta=True).astype(np.float32)
    b = embed_images(net, mirrored, multi_layer=True, flip_tta=True).astype(np.float32)
    np.testing.assert_allclose(a, b, atol=2e-3)
    assert not np.allclose(multi.astype(np.float32), embed_images(net, mirrored, multi_layer=True).astype(np.float32))


def test_max_pooling_takes_each_stages_strongest_position_and_avgmax_holds_both():
    import pytest
    import torch

    from labeling.ml.backbone import resnet18_backbone
    from labeling.ml.embed import MULTI_LAYER_DIM, _pooled, embed_images

    stage = torch.zeros(2, 3, 4, 4)
    stage[0, 1, 2, 3] = 8.0  # one strong position: its mean is 0.5, its maximum 8
    assert _pooled(stage, "max")[0].tolist() == [0.0, 8.0, 0.0]
    assert _pooled(stage, "avg")[0].tolist() == [0.0, 0.5, 0.0]
    assert _pooled(stage, "avgmax")[0].tolist() == [0.0, 0.5, 0.0, 0.0, 8.0, 0.0]
    with pytest.raises(ValueError, match="pool must be one of"):
        _pooled(stage, "median")

    torch.manual_seed(0)
    net = resnet18_backbone(small_stem=False)
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    avg = embed_images(net, images, multi_layer=True).astype(np.float32)
    both = embed_images(net, images, multi_layer=True, pool="avgmax").astype(np.float32)
    peak = embed_images(net, images, multi_layer=True, pool="max").astype(np.float32)
    assert both.shape == (2, 2 * MULTI_LAYER_DIM) and peak.shape == (2, MULTI_LAYER_DIM)
    # layer2 is 4 x 4 at 32 px: its maximum is at least its mean, and somewhere above it.
    assert (peak[:, :128] >= avg[:, :128] - 1e-2).all() and (peak[:, :128] > avg[:, :128] + 1e-2).any()
    np.testing.assert_allclose(both[:, :128], avg[:, :128], atol=2e-3)
    np.testing.assert_allclose(both[:, 128:256], peak[:, :128], atol=2e-3)
