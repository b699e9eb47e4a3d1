"""What a run leaves for people to inspect: TensorBoard event files and a profiler trace.

``TrainLog`` writes scalars (loss, learning rate, images/s, probe metrics) with
``torch.utils.tensorboard`` (the ``tensorboard`` package must be installed); ``step_profiler``
records a few optimiser steps with ``torch.profiler`` and writes a Chrome trace
(open it at chrome://tracing or https://ui.perfetto.dev).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from labeling.ml.train import Progress

if TYPE_CHECKING:  # the tensorboard package is only needed once a writer opens
    from torch.utils.tensorboard import SummaryWriter


class TrainLog:
    """TensorBoard scalars of one run under ``directory``; the writer opens on first use."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._writer: SummaryWriter | None = None

    @property
    def writer(self) -> SummaryWriter:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.directory.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(log_dir=str(self.directory), flush_secs=10)
        return self._writer

    def progress(self, p: Progress) -> None:
        self.writer.add_scalar("train/loss", p.loss, p.step)
        self.writer.add_scalar("train/lr", p.lr, p.step)
        self.writer.add_scalar("train/images_per_s", p.images_per_s, p.step)
        self.writer.add_scalar("train/epoch", p.epoch, p.step)

    def scalars(self, values: dict[str, float | None], step: int) -> None:
        """Write ``{tag: value}`` at ``step``; None values (undefined metrics) are left out."""
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "TrainLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def step_profiler(
    trace_path: str | os.PathLike[str] | None, *, steps: int = 5, skip: int = 1
) -> Iterator[Callable[[], None] | None]:
    """Yields an ``on_step`` callback that profiles ``steps`` optimiser steps after ``skip`` + 1
    (warm-up) and writes a Chrome trace to ``trace_path``; yields None when the path is None."""
    if trace_path is None:
        yield None
        return
    path = Path(trace_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(
        activities=activities,
        record_shapes=True,
        schedule=torch.profiler.schedule(wait=skip, warmup=1, active=steps, repeat=1),
        on_trace_ready=lambda prof: prof.export_chrome_trace(str(path)),
    ) as prof:
        yield prof.step
