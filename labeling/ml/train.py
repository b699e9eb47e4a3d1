"""Barlow Twins pretraining on a uint8 image store: seeded, checkpointed, resumable, cancellable.

The run is defined by :class:`PretrainConfig` (what a checkpoint records and a resume must
match); how it runs (device, compile, callbacks, where checkpoints go) is :class:`Runtime`.
Randomness is drawn from generators seeded by (seed, epoch), so an epoch's batches and views
do not depend on what ran before it, and a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from labeling.ml.augment import VIEW1, VIEW2, Apply, ViewConfig, apply_params, two_views
from labeling.ml.backbone import BarlowTwins, ModelConfig
from labeling.ml.lars import LARS, learning_rate, parameter_groups

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class PretrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 100
    batch_size: int = 256
    lr_weights: float = 0.2  # the reference's per-group factors on the batch/256 schedule
    lr_biases: float = 0.0048
    weight_decay: float = 1e-6
    warmup_epochs: int = 10
    seed: int = 0
    # The random-resized-crop's area range, as the reference (0.08-1 there, 0.2-1 here by the
    # issue). Scene-like images with a few objects may want a higher floor, so both views still
    # show the same objects.
    crop_scale: tuple[float, float] = (0.2, 1.0)

    def views(self) -> tuple[ViewConfig, ViewConfig]:
        return (dataclasses.replace(VIEW1, scale=tuple(self.crop_scale)),
                dataclasses.replace(VIEW2, scale=tuple(self.crop_scale)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        model = dict(d["model"])
        model["projector"] = tuple(model["projector"])
        extra = {"crop_scale": tuple(d["crop_scale"])} if "crop_scale" in d else {}
        return cls(**{**d, **extra, "model": ModelConfig(**model)})


@dataclass(frozen=True)
class Progress:
    epoch: int  # 0-based epoch being run
    step: int  # global optimiser steps done
    steps_per_epoch: int
    loss: float
    images_per_s: float
    lr: float = 0.0  # the weights' learning rate at this step


@dataclass
class Runtime:
    device: str | torch.device = "cpu"
    compile: bool = False
    checkpoint_path: str | os.PathLike | None = None
    on_progress: Callable[[Progress], None] | None = None
    # Checked before every step: make it cheap (a threading.Event's is_set, a flag the
    # caller refreshes from the database now and then), not a query per step.
    should_stop: Callable[[], bool] | None = None
    log_every: int = 20  # steps between progress reports (each costs one device sync)
    # Called after every optimiser step (e.g. a torch.profiler schedule's ``step``).
    on_step: Callable[[], None] | None = None
    # Upload the whole uint8 store to the device once (12 KiB an image at 64 px); otherwise
    # each batch is gathered from the (memory-mapped) array and copied over.
    data_on_device: bool = True


@dataclass
class TrainResult:
    model: BarlowTwins
    status: str  # "finished" or "cancelled"
    epochs_done: int
    loss_history: list[float]  # one per optimiser step


@dataclass
class _State:
    model: BarlowTwins
    optimizer: LARS
    epoch: int = 0
    loss_history: list[float] = field(default_factory=list)


def build_model(config: PretrainConfig) -> BarlowTwins:
    # Seeded without disturbing the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return BarlowTwins(config.model)


def pretrain(config: PretrainConfig, images: np.ndarray | Tensor, runtime: Runtime | None = None) -> TrainResult:
    """Train (or resume training) on uint8 images of shape (N, R, R, 3)."""
    runtime = runtime or Runtime()
    device = torch.device(runtime.device)
    _check_images(images, config)
    batch_size = min(config.batch_size, len(images))
    steps_per_epoch = len(images) // batch_size
    state = _resume_or_start(config, runtime, device)
    data = _to_tensor(images).to(device) if runtime.data_on_device else images
    step_fn = make_train_step(state.model, state.optimizer, device, runtime.compile)
    apply = compiled_augment() if runtime.compile else apply_params
    while state.epoch < config.epochs:
        finished = train_one_epoch(state, data, config, runtime, step_fn, apply, batch_size, steps_per_epoch)
        if not finished:
            return TrainResult(state.model, "cancelled", state.epoch, state.loss_history)
        state.epoch += 1
        if runtime.checkpoint_path is not None:
            save_checkpoint(runtime.checkpoint_path, config, state)
    return TrainResult(state.model, "finished", state.epoch, state.loss_history)


def train_one_epoch(state: _State, data: np.ndarray | Tensor, config: PretrainConfig, runtime: Runtime,
                    step_fn: Callable[[Tensor, Tensor], Tensor], apply: Apply, batch_size: int,
                    steps_per_epoch: int) -> bool:
    """One epoch; False if cancelled part-way (its steps are then discarded by the caller)."""
    device = torch.device(runtime.device)
    order_gen = torch.Generator().manual_seed(_epoch_seed(config.seed, state.epoch, 0))
    aug_gen = torch.Generator(device=device).manual_seed(_epoch_seed(config.seed, state.epoch, 1))
    order = torch.randperm(len(data), generator=order_gen)
    state.model.train()
    losses: list[Tensor] = []
    tick, tick_step = time.perf_counter(), 0
    for i in range(steps_per_epoch):
        if runtime.should_stop is not None and runtime.should_stop():
            return False
        global_step = state.epoch * steps_per_epoch + i
        _set_lr(state.optimizer, config, global_step, steps_per_epoch, batch_size)
        batch = _gather(data, order[i * batch_size:(i + 1) * batch_size], device)
        y1, y2 = two_views(batch, aug_gen, configs=config.views(), apply=apply)  # (B, 3, R, R) each, on the device
        loss = step_fn(y1, y2)
        losses.append(loss.detach())
        if runtime.on_step is not None:
            runtime.on_step()
        if runtime.on_progress is not None and ((i + 1) % runtime.log_every == 0 or i + 1 == steps_per_epoch):
            now = time.perf_counter()
            rate = (i + 1 - tick_step) * batch_size / max(now - tick, 1e-9)
            runtime.on_progress(Progress(state.epoch, global_step + 1, steps_per_epoch, float(loss.detach()), rate,
                                         state.optimizer.param_groups[0]["lr"]))
            tick, tick_step = now, i + 1
    epoch_losses = torch.stack(losses).float().tolist() if losses else []
    if not all(np.isfinite(epoch_losses)):
        raise FloatingPointError(f"non-finite loss in epoch {state.epoch}; checkpoint left as it was")
    state.loss_history.extend(epoch_losses)
    return True


def make_train_step(model: BarlowTwins, optimizer: LARS, device: torch.device,
                    compile: bool) -> Callable[[Tensor, Tensor], Tensor]:
    """Forward both views, backward, LARS step: (B, 3, R, R) x 2 -> loss."""
    cuda = device.type == "cuda"
    if cuda:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model

    def step(y1: Tensor, y2: Tensor) -> Tensor:
        if cuda:
            y1 = y1.contiguous(memory_format=torch.channels_last)
            y2 = y2.contiguous(memory_format=torch.channels_last)
        # bf16 on CUDA only: CPU autocast is slower than fp32 on most CPUs we run on.
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = forward(y1, y2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def compiled_augment() -> Apply:
    """apply_params fused by torch.compile: ~40 elementwise passes per view become a few."""
    return torch.compile(apply_params, dynamic=False)


def _resume_or_start(config: PretrainConfig, runtime: Runtime, device: torch.device) -> _State:
    model = build_model(config).to(device)
    optimizer = LARS(parameter_groups(model), weight_decay=config.weight_decay)
    state = _State(model, optimizer)
    path = runtime.checkpoint_path
    if path is not None and Path(path).exists():
        ckpt = torch.load(path, map_location=device, weights_only=True)
        saved = PretrainConfig.from_dict(ckpt["config"])
        if saved != config:
            raise ValueError(f"checkpoint {path} is for a different run: {saved} != {config}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state.epoch, state.loss_history = int(ckpt["epoch"]), list(ckpt["loss_history"])
    return state


def save_checkpoint(path: str | os.PathLike, config: PretrainConfig, state: _State) -> None:
    """Config, model, optimiser, epochs done and loss history; written atomically."""
    payload = {
        "version": CHECKPOINT_VERSION,
        "config": config.to_dict(),
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "epoch": state.epoch,
        "loss_history": state.loss_history,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a torn checkpoint


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[PretrainConfig, dict]:
    ckpt = torch.load(path, map_location=device, weights_only=True)
    return PretrainConfig.from_dict(ckpt["config"]), ckpt


def _set_lr(optimizer: LARS, config: PretrainConfig, step: int, steps_per_epoch: int, batch_size: int) -> None:
    lr = learning_rate(step, total_steps=config.epochs * steps_per_epoch,
                       warmup_steps=config.warmup_epochs * steps_per_epoch, batch_size=batch_size)
    optimizer.param_groups[0]["lr"] = lr * config.lr_weights
    optimizer.param_groups[1]["lr"] = lr * config.lr_biases


def _to_tensor(images: np.ndarray | Tensor) -> Tensor:
    # np.array copies: a memory-mapped store is read-only and torch wants writable memory.
    return images if isinstance(images, Tensor) else torch.from_numpy(np.array(images))


def _gather(data: np.ndarray | Tensor, index: Tensor, device: torch.device) -> Tensor:
    if isinstance(data, Tensor):
        return data[index.to(data.device)].to(device, non_blocking=True)
    # Rows in the epoch's order (not sorted for locality): each position in the batch gets
    # its own augmentation draw, so the order must match the on-device path's exactly.
    rows = index.numpy()
    return torch.from_numpy(np.ascontiguousarray(np.asarray(data)[rows])).to(device, non_blocking=True)


def _epoch_seed(seed: int, epoch: int, stream: int) -> int:
    return (seed * 1_000_003 + epoch) * 2 + stream


def _check_images(images: np.ndarray | Tensor, config: PretrainConfig) -> None:
    r = config.model.resolution
    if tuple(images.shape[1:]) != (r, r, 3) or images.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"expected uint8 images of shape (N, {r}, {r}, 3), got {images.dtype} {tuple(images.shape)}")
    if len(images) < 2:
        raise ValueError("pretraining needs at least 2 images")
