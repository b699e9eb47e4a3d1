"""Fine-tuned suggestions (labeling.ml.finetune): a network that learns the labels, out-of-fold
scores from networks that never saw their rows, a file that scores as the network did, and a stop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from labeling.ml import finetune as finetune_module
from labeling.ml.backbone import ModelConfig, resnet18_backbone
from labeling.ml.finetune import VIEWS, FinetuneConfig, Stopped, cross_fit, fit, folds, load_net, predict, save_net
from labeling.ml.metrics import evaluate
from tests.labeling.ml.toys import toy_images

MODEL = ModelConfig(resolution=8, projector=(32, 32), width=16)
QUICK = FinetuneConfig(epochs=15, max_steps=40, batch_size=16, folds=3)


def colour_labels(images: np.ndarray) -> np.ndarray:
    """Two labels read off the pixels: "much red" and "much blue" (both, one or neither)."""
    mean = images.reshape(len(images), -1, 3).mean(1)
    return np.stack([mean[:, 0] > np.median(mean[:, 0]), mean[:, 2] > np.median(mean[:, 2])], 1).astype(np.uint8)


def test_the_folds_split_every_row_once():
    parts = folds(10, 3, seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    assert [len(p) for p in parts] == [4, 3, 3]
    assert len(folds(2, 5, seed=0)) == 2  # never more folds than rows


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_cross_fitted_scores_rank_the_labels_a_network_can_see(view):
    images = toy_images(n=48, size=8, seed=1)
    y = colour_labels(images)
    done = []
    config = dataclasses.replace(QUICK, view=view)
    net, oof = cross_fit(None, MODEL, images, y, config, progress=lambda i, total: done.append((i, total)))
    assert done == [(1, 4), (2, 4), (3, 4), (4, 4)]  # a network per fold, then one on everything
    assert oof.shape == y.shape and np.isfinite(oof).all() and ((oof >= 0) & (oof <= 1)).all()
    assert evaluate(y.astype(bool), oof, np.full(2, 0.5)).map > 0.8  # chance is 0.5
    fresh = toy_images(n=32, size=8, seed=2)
    assert evaluate(colour_labels(fresh).astype(bool), predict(net, fresh), np.full(2, 0.5)).map > 0.8


def test_a_rows_out_of_fold_score_is_from_the_network_trained_on_the_other_folds():
    images = toy_images(n=30, size=8, seed=3)
    y = colour_labels(images)
    _, oof = cross_fit(None, MODEL, images, y, QUICK)
    for held in folds(30, QUICK.folds, QUICK.seed):
        rest = np.setdiff1d(np.arange(30), held)
        alone = fit(None, MODEL, images[rest], y[rest], QUICK)
        np.testing.assert_allclose(oof[held], predict(alone, images[held]), atol=1e-5)


def test_a_fit_starts_from_the_backbone_it_is_given():
    backbone = resnet18_backbone(small_stem=MODEL.uses_small_stem, width=MODEL.width)
    images = toy_images(n=16, size=8)
    net = fit(
        backbone.state_dict(), MODEL, images, colour_labels(images), FinetuneConfig(epochs=1, max_steps=1, lr=0.0)
    )
    state = backbone.state_dict()
    assert all(
        np.array_equal(v.numpy(), state[k].numpy())
        for k, v in net.backbone.state_dict().items()
        if "running" not in k and "num_batches" not in k
    )


def test_a_saved_network_scores_as_it_did(tmp_path):
    images = toy_images(n=24, size=8)
    net = fit(None, MODEL, images, colour_labels(images), QUICK)
    save_net(tmp_path / "run" / "finetuned.pt", net, QUICK)
    assert not list((tmp_path / "run").glob("*.tmp"))
    loaded = load_net(tmp_path / "run" / "finetuned.pt")
    np.testing.assert_array_equal(predict(loaded, images), predict(net, images))


def test_a_stop_ends_the_fit_before_the_next_epoch():
    images = toy_images(n=16, size=8)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Stopped):
        cross_fit(None, MODEL, images, colour_labels(images), QUICK, should_stop=stop)
    assert len(calls) == 3


def test_a_fit_paused_at_every_chance_resumes_to_what_one_fit_gives():
    """A fine-tuning pauses between two epochs or two networks, after at least one epoch since it
    (re)started, and what Paused gives back resumes it: the same scores and network as a fit that
    never paused, even when every claim is asked to yield (one epoch a claim)."""
    from labeling.ml.finetune import Paused

    images = toy_images(n=30, size=8, seed=5)
    y = colour_labels(images)
    whole_net, whole = cross_fit(None, MODEL, images, y, QUICK)
    done, current, claims, epochs = {}, None, 0, []
    real_epoch = finetune_module.supervised_epoch

    def counted(*args, **kwargs):
        epochs.append(claims)
        return real_epoch(*args, **kwargs)

    finetune_module.supervised_epoch = counted
    try:
        while True:
            claims += 1
            try:
                net, oof = cross_fit(
                    None, MODEL, images, y, QUICK, should_yield=lambda: True, done=done, current=current
                )
                break
            except Paused as stop:
                assert stop.total == 4
                done, current = stop.done, stop.current
    finally:
        finetune_module.supervised_epoch = real_epoch
    # Four networks of 15 one-step epochs each (QUICK on 20 and 30 rows): 60 claims of one epoch.
    assert claims == 60 and epochs == list(range(1, 61))
    np.testing.assert_allclose(oof, whole, atol=1e-5)
    fresh = toy_images(n=8, size=8, seed=6)
    np.testing.assert_allclose(predict(net, fresh), predict(whole_net, fresh), atol=1e-5)


def test_a_fit_that_is_never_asked_to_yield_runs_through():
    images = toy_images(n=24, size=8, seed=7)
    _, oof = cross_fit(None, MODEL, images, colour_labels(images), QUICK, should_yield=lambda: False)
    assert oof.shape == (24, 2) and np.isfinite(oof).all()
