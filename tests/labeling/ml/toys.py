"""Tiny inputs the pretraining tests share: images a network can learn to tell apart in a few steps,
the smallest pretraining config that exercises every part of the loop, and a clock that moves only
when a step runs (for the time-budgeted pretraining and detector fits)."""

from __future__ import annotations

import numpy as np

from labeling.ml.backbone import ModelConfig
from labeling.ml.train import PretrainConfig


def toy_images(n: int = 32, size: int = 8, seed: int = 0) -> np.ndarray:
    """Flat patches of four colours plus noise: something a network can learn to tell apart."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (4, 3))
    pixels = colours[rng.integers(0, 4, n)][:, None, None, :] + rng.normal(0, 10, (n, size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def tiny_config(**overrides) -> PretrainConfig:
    base = dict(
        model=ModelConfig(resolution=8, projector=(32, 32)), epochs=2, batch_size=16, warmup_epochs=1, lr_weights=1.0
    )
    return PretrainConfig(**{**base, **overrides})


class FakeClock:
    """Time that moves only when a step runs: ``per_step`` seconds for every should_stop call."""

    def __init__(self, per_step: float) -> None:
        self.now, self.per_step = 0.0, per_step

    def __call__(self) -> float:
        return self.now

    def tick(self) -> bool:
        self.now += self.per_step
        return False
