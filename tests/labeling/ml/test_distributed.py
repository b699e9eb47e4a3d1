"""Two CPU processes with gloo, each with half the global batch, train exactly as one process
on the whole batch: same views, same loss (global batch statistics), same parameters after."""

import numpy as np
import pytest
import torch
import torch.distributed as dist

from labeling.ml import distributed
from labeling.ml.barlow import barlow_twins_loss
from tests.labeling.ml.toys import tiny_config, toy_images
from labeling.ml.train import Runtime, pretrain

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo is not available"
)


def test_it_trains_two_gloo_processes_to_the_single_process_result(tmp_path):
    images, config = toy_images(), tiny_config()
    one = pretrain(config, images)
    path = tmp_path / "run.pt"
    two = pretrain(config, images, Runtime(world_size=2, backend="gloo", checkpoint_path=path))
    assert two.status == "finished" and len(two.loss_history) == len(one.loss_history) == 4
    # The loss of every step: global statistics, so the same numbers (up to summation order).
    np.testing.assert_allclose(two.loss_history, one.loss_history, rtol=1e-4)
    # Parameters and BN running statistics after 4 optimiser steps.
    ref = one.model.state_dict()
    for name, value in two.model.state_dict().items():
        torch.testing.assert_close(value.float(), ref[name].float(), rtol=1e-3, atol=1e-4, msg=name)
    # Rank 0 wrote the checkpoint, and it loads into a plain (one-process) model.
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 2 and saved["loss_history"] == two.loss_history
    one.model.load_state_dict(saved["model"])


def test_two_processes_pause_together_mid_epoch_at_rank_0s_word_and_resume_into_the_same_run(tmp_path):
    images, config = toy_images(64), tiny_config()  # 4 global steps an epoch
    one, path = pretrain(config, images), tmp_path / "run.pt"
    first = pretrain(
        config, images, Runtime(world_size=2, backend="gloo", checkpoint_path=path, should_yield=lambda: True)
    )
    assert (first.status, len(first.loss_history)) == ("yielded", 1)  # asked before the session's second step
    assert torch.load(path, weights_only=True)["step_in_epoch"] == 1
    two = pretrain(config, images, Runtime(world_size=2, backend="gloo", checkpoint_path=path))
    assert two.status == "finished"
    np.testing.assert_allclose(two.loss_history, one.loss_history, rtol=1e-4)
    ref = one.model.state_dict()
    for name, value in two.model.state_dict().items():
        torch.testing.assert_close(value.float(), ref[name].float(), rtol=1e-3, atol=1e-4, msg=name)


def test_the_first_step_matches_before_any_update_drift(tmp_path):
    """One step, tight tolerance: the loss and every parameter after the first LARS step."""
    images, config = toy_images(n=16), tiny_config(epochs=1)
    one = pretrain(config, images)
    two = pretrain(config, images, Runtime(world_size=2, backend="gloo"))
    assert len(one.loss_history) == 1
    assert two.loss_history == pytest.approx(one.loss_history, rel=1e-5)
    ref = one.model.state_dict()
    for name, value in two.model.state_dict().items():
        torch.testing.assert_close(value.float(), ref[name].float(), rtol=1e-4, atol=1e-5, msg=name)


def test_gather_batch_is_the_identity_in_one_process():
    z = torch.randn(4, 3, requires_grad=True)
    assert distributed.gather_batch(z) is z
    assert not distributed.active() and distributed.rank_and_world() == (0, 1)


def test_it_refuses_a_global_batch_it_cannot_split():
    with pytest.raises(ValueError, match="cannot be split"):
        pretrain(tiny_config(batch_size=3), toy_images(n=8), Runtime(world_size=2, backend="gloo"))


def test_global_batchnorm_equals_batchnorm_in_one_process():
    bn = torch.nn.BatchNorm1d(5)
    converted = distributed.convert_batchnorm(torch.nn.Sequential(bn), torch.device("cpu"))
    assert isinstance(converted[0], distributed.GlobalBatchNorm)
    x = torch.randn(8, 5)
    # Not active: the converted layer is a plain BatchNorm.
    torch.testing.assert_close(converted(x), bn(x))
    loss = barlow_twins_loss(converted(x), converted(x.flip(0)))
    assert torch.isfinite(loss)


def test_two_processes_stream_from_a_cache_view_as_one_does(tmp_path):
    """The ranks get the view's path and rows, not the pixels, and read their batches themselves."""
    from PIL import Image

    from labeling.ml.cache import ImageCache

    images = toy_images(n=16)
    cache = ImageCache(tmp_path / "cache", resolution=8)
    cache.add(np.arange(16), [Image.fromarray(p) for p in images])
    view = cache.view(np.arange(16))
    config = tiny_config(epochs=1)
    one = pretrain(config, cache.read(np.arange(16)))
    two = pretrain(config, view, Runtime(world_size=2, backend="gloo", data_on_device=False))
    assert two.loss_history == pytest.approx(one.loss_history, rel=1e-5)
