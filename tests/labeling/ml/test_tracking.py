import json

import numpy as np

from labeling.ml.backbone import ModelConfig
from labeling.ml.tracking import TrainLog, step_profiler
from labeling.ml.train import PretrainConfig, Progress, Runtime, pretrain


def _scalars(directory) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_it_writes_loss_lr_and_throughput_as_tensorboard_scalars(tmp_path):
    with TrainLog(tmp_path / "tb") as log:
        log.progress(Progress(epoch=0, step=5, steps_per_epoch=10, loss=3.5, images_per_s=100.0, lr=0.1))
        log.scalars({"probe/map": 0.4, "probe/undefined": None}, step=7)
    scalars = _scalars(tmp_path / "tb")
    assert scalars["train/loss"] == [(5, 3.5)] and scalars["probe/map"][0][0] == 7
    assert abs(scalars["train/lr"][0][1] - 0.1) < 1e-6 and "probe/undefined" not in scalars


def test_the_profiler_records_a_few_steps_of_a_pretraining_as_a_chrome_trace(tmp_path):
    config = PretrainConfig(model=ModelConfig(resolution=16, projector=(32,)), epochs=1, batch_size=4, warmup_epochs=0)
    images = np.random.default_rng(0).integers(0, 255, size=(40, 16, 16, 3), dtype=np.uint8)
    steps = []
    with step_profiler(tmp_path / "trace.json", steps=3) as on_step:
        pretrain(config, images, Runtime(on_step=lambda: (steps.append(1), on_step())))
    assert len(steps) == 10
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert any(e.get("name", "").startswith("ProfilerStep#") for e in trace["traceEvents"])


def test_without_a_path_the_profiler_is_off():
    with step_profiler(None) as on_step:
        assert on_step is None
