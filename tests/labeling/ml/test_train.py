import threading

import numpy as np
import pytest
import torch

from tests.labeling.ml.toys import FakeClock, tiny_config, toy_images
from labeling.ml import train
from labeling.ml.train import Runtime, load_checkpoint, pretrain


def _stop_after(epochs_done: int, steps_per_epoch: int):
    """A should_stop that says yes at the first step of epoch ``epochs_done``."""
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > epochs_done * steps_per_epoch

    return should_stop


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    images, config = toy_images(), tiny_config()
    whole = pretrain(config, images)
    path = tmp_path / "run.pt"
    first = pretrain(config, images, Runtime(checkpoint_path=path, should_stop=_stop_after(1, 2)))
    assert (first.status, first.epochs_done) == ("cancelled", 1)
    resumed = pretrain(config, images, Runtime(checkpoint_path=path))
    assert (resumed.status, resumed.epochs_done) == ("finished", 2)
    assert resumed.loss_history == whole.loss_history
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def _same_run(a, b) -> None:
    assert a.loss_history == b.loss_history
    for name, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[name]), name


def test_a_session_that_yields_ends_at_a_checkpoint_mid_epoch_and_resumes_into_the_same_run(tmp_path):
    images, config = toy_images(64), tiny_config(epochs=2)  # 4 steps an epoch
    whole = pretrain(config, images)
    path, asked = tmp_path / "run.pt", []

    def should_yield() -> bool:  # no, then yes
        asked.append(len(asked))
        return len(asked) == 2

    first = pretrain(config, images, Runtime(checkpoint_path=path, should_yield=should_yield))
    # Asked before steps 2 and 3 (never before a session's first): paused after two steps.
    assert (first.status, first.epochs_done, len(first.loss_history)) == ("yielded", 0, 2) and asked == [0, 1]
    ckpt = load_checkpoint(path)[1]
    assert (ckpt["epoch"], ckpt["step_in_epoch"], len(ckpt["loss_history"])) == (0, 2, 2)
    resumed = pretrain(config, images, Runtime(checkpoint_path=path, should_yield=lambda: False))
    assert (resumed.status, resumed.epochs_done) == ("finished", 2)
    _same_run(whole, resumed)  # the pause changed nothing: the same batches, views and weights
    # Without a checkpoint to resume from a session never yields, nor before its first step.
    assert pretrain(config, images, Runtime(should_yield=should_yield)).status == "finished"
    one_step = pretrain(
        tiny_config(epochs=1), toy_images(16), Runtime(checkpoint_path=tmp_path / "b.pt", should_yield=should_yield)
    )
    assert one_step.status == "finished" and asked == [0, 1]


def test_a_session_yields_at_an_epochs_end_without_a_second_checkpoint(tmp_path, monkeypatch):
    images, config = toy_images(), tiny_config(epochs=3)  # 2 steps an epoch
    whole, path = pretrain(config, images), tmp_path / "run.pt"
    writes: list[tuple[int, int]] = []
    save = train.save_checkpoint
    monkeypatch.setattr(
        train, "save_checkpoint", lambda p, c, s: (writes.append((s.epoch, s.step_in_epoch)), save(p, c, s))
    )
    answers = iter([False, True])  # before step 2, then before the second epoch's first step
    first = pretrain(config, images, Runtime(checkpoint_path=path, should_yield=lambda: next(answers)))
    assert (first.status, first.epochs_done) == ("yielded", 1)
    assert writes == [(1, 0)]  # the epoch's end, and no second write of the same step for the pause
    assert (load_checkpoint(path)[1]["epoch"], load_checkpoint(path)[1]["step_in_epoch"]) == (1, 0)
    _same_run(whole, pretrain(config, images, Runtime(checkpoint_path=path)))


def test_a_long_epoch_is_checkpointed_by_time_and_a_kill_after_it_loses_only_the_steps_since(tmp_path):
    images, config = toy_images(64), tiny_config(epochs=2)  # 4 steps an epoch
    whole, path = pretrain(config, images), tmp_path / "run.pt"
    clock, calls = FakeClock(10.0), {"n": 0}

    def killed_at_the_eighth_step() -> bool:  # 10 s a step: the run dies before its last step
        clock.tick()
        calls["n"] += 1
        return calls["n"] == 8

    first = pretrain(
        config,
        images,
        Runtime(checkpoint_path=path, clock=clock, should_stop=killed_at_the_eighth_step, checkpoint_every_s=15.0),
    )
    assert first.status == "cancelled"
    ckpt = load_checkpoint(path)[1]
    # The second epoch's checkpoint by time, 20 s (two steps) into it, not the first epoch's end.
    assert (ckpt["epoch"], ckpt["step_in_epoch"], len(ckpt["loss_history"])) == (1, 2, 6)
    assert ckpt["loss_history"] == whole.loss_history[:6]
    resumed = pretrain(config, images, Runtime(checkpoint_path=path))
    assert resumed.status == "finished"
    _same_run(whole, resumed)
    # Without checkpoint_every_s, only epoch ends are written.
    calls["n"], path2 = 0, tmp_path / "epochs.pt"
    pretrain(
        config,
        images,
        Runtime(checkpoint_path=path2, clock=clock, should_stop=killed_at_the_eighth_step, checkpoint_every_s=None),
    )
    assert (load_checkpoint(path2)[1]["epoch"], load_checkpoint(path2)[1]["step_in_epoch"]) == (1, 0)


def test_its_checkpoint_holds_config_model_optimizer_epoch_and_history(tmp_path):
    path = tmp_path / "run.pt"
    result = pretrain(tiny_config(epochs=1), toy_images(), Runtime(checkpoint_path=path))
    config, ckpt = load_checkpoint(path)
    assert config == tiny_config(epochs=1)
    assert ckpt["epoch"] == 1 and ckpt["loss_history"] == result.loss_history and len(result.loss_history) == 2
    assert set(ckpt) >= {"model", "optimizer"} and ckpt["optimizer"]["state"]


def test_it_stops_between_steps_when_asked_and_keeps_the_last_whole_epoch(tmp_path):
    path = tmp_path / "run.pt"
    stop = threading.Event()
    seen = []

    def on_progress(p):
        seen.append(p)
        stop.set()  # cancel as soon as the first step is reported

    result = pretrain(
        tiny_config(),
        toy_images(),
        Runtime(checkpoint_path=path, on_progress=on_progress, log_every=1, should_stop=stop.is_set),
    )
    assert result.status == "cancelled" and result.epochs_done == 0 and len(seen) == 1
    assert not path.exists()  # the half epoch is not saved as if it were whole


def test_it_reports_progress():
    seen = []
    pretrain(tiny_config(epochs=1), toy_images(), Runtime(on_progress=seen.append, log_every=1))
    assert [(p.epoch, p.step, p.steps_per_epoch) for p in seen] == [(0, 1, 2), (0, 2, 2)]
    assert all(np.isfinite(p.loss) and p.images_per_s > 0 for p in seen)


def test_its_loss_falls_on_a_toy_set():
    history = pretrain(tiny_config(epochs=8, warmup_epochs=0), toy_images()).loss_history
    assert np.mean(history[-4:]) < 0.8 * np.mean(history[:2])


def test_it_refuses_to_resume_a_different_run(tmp_path):
    path = tmp_path / "run.pt"
    pretrain(tiny_config(epochs=1), toy_images(), Runtime(checkpoint_path=path))
    with pytest.raises(ValueError, match="different run"):
        pretrain(tiny_config(epochs=1, seed=7), toy_images(), Runtime(checkpoint_path=path))


def test_it_rejects_images_of_the_wrong_shape():
    with pytest.raises(ValueError, match="uint8 images"):
        pretrain(tiny_config(), np.zeros((4, 16, 16, 3), np.uint8))


def test_it_trains_from_a_memory_mapped_store_without_uploading_it(tmp_path):
    images = toy_images()
    store = np.memmap(tmp_path / "px", dtype=np.uint8, mode="w+", shape=images.shape)
    store[:] = images
    a = pretrain(tiny_config(epochs=1), store, Runtime(data_on_device=False))
    b = pretrain(tiny_config(epochs=1), images)
    assert a.loss_history == b.loss_history


def test_progress_is_reported_by_time_when_steps_are_slow():
    # 4 s a step and log_every far away: a report at least every progress_every_s (6 s) of the clock.
    clock, seen = FakeClock(4.0), []
    pretrain(
        tiny_config(epochs=3),
        toy_images(64),
        Runtime(
            on_progress=lambda p: seen.append(clock.now),
            log_every=1000,
            progress_every_s=6.0,
            clock=clock,
            should_stop=clock.tick,
        ),
    )
    gaps = np.diff([0.0, *seen])
    assert len(seen) >= 4 and gaps.max() <= 6.0 + 4.0  # at most one slow step past the cadence


def test_a_time_budget_ends_the_run_and_its_cosine_when_the_time_is_up():
    # 1 s a step, a 7 s budget: about 7 steps whatever the epochs say, and the learning rate has
    # come down the cosine to its end by then (it was laid over the steps the budget buys).
    clock, seen = FakeClock(1.0), []
    result = pretrain(
        tiny_config(epochs=100, time_budget_s=7.0),
        toy_images(),
        Runtime(on_progress=seen.append, log_every=1, clock=clock, should_stop=clock.tick),
    )
    assert result.status == "finished" and 6 <= len(result.loss_history) <= 8
    lrs = [p.lr for p in seen]
    peak = int(np.argmax(lrs))
    assert 0 < peak < len(lrs) - 1 and lrs[-1] < 0.2 * lrs[peak]  # warmed up, then annealed
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))
    assert seen[-1].eta_s is not None and seen[-1].eta_s <= 1.5
    assert seen[-1].total_steps <= 9  # not the 100 epochs' 200 steps


def test_the_eta_of_an_epoch_run_follows_the_measured_rate():
    clock, seen = FakeClock(2.0), []
    pretrain(
        tiny_config(epochs=3),
        toy_images(),
        Runtime(on_progress=seen.append, log_every=1, clock=clock, should_stop=clock.tick),
    )
    # 6 steps of 2 s: after step k, (6 - k) steps are left at 2 s each.
    assert [round(p.eta_s) for p in seen[1:]] == [2 * (6 - k) for k in range(2, 7)]


def test_a_budgeted_run_resumes_with_the_time_it_has_left(tmp_path):
    path = tmp_path / "run.pt"
    clock = FakeClock(1.0)
    config = tiny_config(epochs=100, time_budget_s=9.0)
    stop_at = {"n": 0}

    def stop() -> bool:  # cancel at the first step of the second epoch (after one checkpoint)
        clock.tick()
        stop_at["n"] += 1
        return stop_at["n"] > 2

    first = pretrain(config, toy_images(), Runtime(checkpoint_path=path, clock=clock, should_stop=stop))
    assert first.status == "cancelled" and first.epochs_done == 1
    _, ckpt = load_checkpoint(path)
    assert ckpt["elapsed_s"] >= 1.0
    clock2 = FakeClock(1.0)
    resumed = pretrain(config, toy_images(), Runtime(checkpoint_path=path, clock=clock2, should_stop=clock2.tick))
    assert resumed.status == "finished" and len(resumed.loss_history) < 2 + 9  # not a fresh 9 s


def test_a_run_whose_time_runs_out_mid_epoch_leaves_its_final_weights_in_the_checkpoint(tmp_path):
    # The detector and the embedding of images added later load the backbone from the checkpoint: it
    # must be the model whose features the run wrote, not the last whole epoch's.
    path, clock = tmp_path / "run.pt", FakeClock(1.0)
    config = tiny_config(epochs=100, time_budget_s=6.5)
    runtime = Runtime(checkpoint_path=path, clock=clock, should_stop=clock.tick, checkpoint_every_s=None)
    result = pretrain(config, toy_images(64), runtime)  # 4 steps an epoch
    assert result.status == "finished" and len(result.loss_history) % 4  # it ended within an epoch
    _, ckpt = load_checkpoint(path)
    assert ckpt["loss_history"] == result.loss_history
    assert ckpt["step_in_epoch"] == len(result.loss_history) % 4
    for name, value in result.model.state_dict().items():
        assert torch.equal(value, ckpt["model"][name]), name
    # Claimed again (a worker died before the run was marked done), it finishes where it was.
    again = pretrain(config, toy_images(64), Runtime(checkpoint_path=path, clock=clock, should_stop=clock.tick))
    assert again.status == "finished"
    _same_run(result, again)


def test_strong_colour_widens_both_views_jitter_and_a_run_saved_without_it_is_the_reference():
    from labeling.ml.augment import VIEW1, VIEW2
    from labeling.ml.presets import COLOUR_STRENGTHS
    from labeling.ml.train import PretrainConfig

    reference, strong = tiny_config(), tiny_config(colour="strong")
    assert reference.colour == "reference"
    first, second = reference.views()
    assert (first.hue, first.grayscale_p, second.hue, second.solarize_p) == (VIEW1.hue, VIEW1.grayscale_p, 0.1, 0.2)
    for view, base in zip(strong.views(), (VIEW1, VIEW2)):
        assert (view.hue, view.grayscale_p, view.saturation) == (0.5, 0.5, 0.8)
        assert (view.blur_p, view.solarize_p, view.scale) == (base.blur_p, base.solarize_p, strong.crop_scale)
    assert set(COLOUR_STRENGTHS["strong"]) <= set(VIEW1.__dataclass_fields__)
    # A checkpoint written before "colour" existed resumes as what it trained with.
    saved = strong.to_dict()
    del saved["colour"]
    assert PretrainConfig.from_dict(saved) == reference
    with pytest.raises(KeyError):
        tiny_config(colour="neon").views()


def test_a_strong_colour_run_trains_and_differs_from_the_reference():
    images = toy_images()
    reference = pretrain(tiny_config(epochs=1), images)
    strong = pretrain(tiny_config(epochs=1, colour="strong"), images)
    assert all(np.isfinite(strong.loss_history)) and strong.loss_history != reference.loss_history
