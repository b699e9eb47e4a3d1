"""Barlow Twins pretraining on a uint8 image store: seeded, checkpointed, resumable, cancellable.

The run is defined by :class:`PretrainConfig` (what a checkpoint records and a resume must
match); how it runs (device, compile, callbacks, where checkpoints go) is :class:`Runtime`.
Randomness is drawn from generators seeded by (seed, epoch), so an epoch's batches and views
do not depend on what ran before it, and a resumed run repeats an uninterrupted one. A checkpoint
is written at every epoch's end and, within a long epoch, every ``Runtime.checkpoint_every_s``
(then with the step reached in the epoch and the views' generator state, so that a run resumed
mid-epoch still repeats the uninterrupted one): a kill loses at most that much training, and a
session can pause for waiting work at any step (``Runtime.should_yield``).

A run is sized either by ``epochs`` or by a wall-clock ``time_budget_s`` (then ``epochs`` is only
a cap). With a budget the warm-up + cosine schedule is laid over the number of steps the budget
buys, estimated from the measured step rate and re-estimated at every step, so the learning rate
reaches the end of its cosine when the time is up, whatever the device.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from labeling.ml import distributed
from labeling.ml.augment import VIEW1, VIEW2, Apply, ViewConfig, apply_params, two_views
from labeling.ml.backbone import BarlowTwins, ModelConfig
from labeling.ml.files import replaced
from labeling.ml.lars import LARS, learning_rate, parameter_groups
from labeling.ml.pace import Pace
from labeling.ml.presets import COLOUR_STRENGTHS

CHECKPOINT_VERSION = 1
# With a time budget: the share of the (estimated) steps spent warming up.
BUDGET_WARMUP_FRACTION = 0.05


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
    # How hard the views' colours are distorted: a key of labeling.ml.presets.COLOUR_STRENGTHS.
    colour: str = "reference"
    # Train for this many seconds (``epochs`` then only caps it); None: train for ``epochs``.
    time_budget_s: float | None = None

    def views(self) -> tuple[ViewConfig, ViewConfig]:
        scale = (self.crop_scale[0], self.crop_scale[1])  # a tuple even when the config was built with a list
        changes: dict[str, Any] = {"scale": scale, **COLOUR_STRENGTHS[self.colour]}
        return dataclasses.replace(VIEW1, **changes), dataclasses.replace(VIEW2, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PretrainConfig":
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
    elapsed_s: float = 0.0  # training time so far (resumed runs include their earlier sessions)
    eta_s: float | None = None  # seconds of training left, from the measured step rate (None: not known yet)
    total_steps: int = 0  # the schedule's length: exact for epochs, an estimate under a time budget


@dataclass
class Runtime:
    device: str | torch.device = "cpu"
    compile: bool = False
    checkpoint_path: str | os.PathLike[str] | None = None
    on_progress: Callable[[Progress], None] | None = None
    # Checked before every step: make it cheap (a threading.Event's is_set, a flag the
    # caller refreshes from the database now and then), not a query per step.
    should_stop: Callable[[], bool] | None = None
    # Asked before each step after the session's first (rank 0's answer for all ranks; make it cheap,
    # as should_stop): True writes a checkpoint there and ends the session with status "yielded", to
    # be resumed from that step later, its time budget intact. Never asked without a checkpoint_path.
    should_yield: Callable[[], bool] | None = None
    # Within an epoch, a checkpoint at the first step boundary this many seconds after the last one
    # (None: at epoch ends only). On a CPU an epoch of a large project can take many minutes.
    checkpoint_every_s: float | None = 300.0
    log_every: int = 20  # steps between progress reports (each costs one device sync)
    # ... and at most this many seconds between them, however slow a step is: the project page's
    # progress and ETA stay live on a slow CPU (a report is also made after the first step).
    progress_every_s: float = 5.0
    clock: Callable[[], float] = time.monotonic  # injectable, so tests can check time-based behaviour
    # Called after every optimiser step (e.g. a torch.profiler schedule's ``step``).
    on_step: Callable[[], None] | None = None
    # Upload the whole uint8 store to the device once (12 KiB an image at 64 px); otherwise
    # each batch is gathered from the (memory-mapped) array and copied over.
    data_on_device: bool = True
    # Processes on this host, one per GPU (or CPU processes with gloo, for tests): >1 trains with
    # DistributedDataParallel and global batch statistics (labeling.ml.distributed). The
    # config's batch_size is the global batch; each rank takes batch_size / world_size of it.
    world_size: int = 1
    backend: str | None = None  # None: nccl on CUDA, gloo otherwise


@dataclass
class TrainResult:
    model: BarlowTwins
    status: str  # "finished" (epochs done or time budget spent), "cancelled" or "yielded" (see Runtime)
    epochs_done: int
    loss_history: list[float]  # one per optimiser step


@dataclass
class _State:
    model: BarlowTwins
    optimizer: LARS
    epoch: int = 0
    loss_history: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0  # training seconds of earlier sessions (from the checkpoint)
    pace: Pace | None = None
    step_in_epoch: int = 0  # steps of ``epoch`` already done (a checkpoint written mid-epoch)
    views_state: Tensor | None = None  # the epoch's view generator's state at step_in_epoch


def _pace(config: PretrainConfig, runtime: Runtime, earlier_s: float, steps_per_epoch: int) -> Pace:
    return Pace(
        budget_s=config.time_budget_s,
        cap_steps=config.epochs * steps_per_epoch,
        clock=runtime.clock,
        earlier_s=earlier_s,
    )


def build_model(config: PretrainConfig) -> BarlowTwins:
    # Seeded without disturbing the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return BarlowTwins(config.model)


def pretrain(config: PretrainConfig, images: np.ndarray | Tensor, runtime: Runtime | None = None) -> TrainResult:
    """Train (or resume training) on uint8 images of shape (N, R, R, 3): an array, a memory map, or
    an ImageCache.view (read batch by batch when ``runtime.data_on_device`` is off)."""
    runtime = runtime or Runtime()
    _check_images(images, config)
    world = max(runtime.world_size, distributed.rank_and_world()[1])
    batch_size = min(config.batch_size, len(images)) // world * world
    if batch_size < 2 * world:
        raise ValueError(f"a global batch of {batch_size} cannot be split over {world} processes")
    if runtime.world_size > 1 and not distributed.active():
        return _launch(config, images, runtime)
    device = _rank_device(torch.device(runtime.device))
    rank = distributed.rank_and_world()[0]
    steps_per_epoch = len(images) // batch_size
    state = _resume_or_start(config, runtime, device)
    data = _to_tensor(images).to(device) if runtime.data_on_device else images
    forward: torch.nn.Module = state.model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(state.model, device_ids=[device] if device.type == "cuda" else None)
    step_fn = make_train_step(state.model, state.optimizer, device, runtime.compile, forward=forward)
    apply = compiled_augment() if runtime.compile else apply_params
    state.pace = _pace(config, runtime, state.elapsed_s, steps_per_epoch)
    while state.epoch < config.epochs:
        outcome = train_one_epoch(state, data, config, runtime, step_fn, apply, batch_size, steps_per_epoch)
        if outcome == "cancelled":
            return TrainResult(state.model, "cancelled", state.epoch, state.loss_history)
        if outcome == "yielded":  # at a mid-epoch checkpoint
            return TrainResult(state.model, "yielded", state.epoch, state.loss_history)
        if outcome == "out of time":  # the steps of the part-epoch are kept: the schedule ended with them
            # The final weights, not the last epoch's: the backbone that readers load from the checkpoint
            # (the detector, the embedding of images added later) is the one whose features were written.
            _save(runtime, config, state, rank)
            break
        state.epoch, state.step_in_epoch, state.views_state = state.epoch + 1, 0, None
        _save(runtime, config, state, rank)
    return TrainResult(state.model, "finished", state.epoch, state.loss_history)


def _save(runtime: Runtime, config: PretrainConfig, state: _State, rank: int) -> None:
    """Write the run's checkpoint, if it has one: rank 0 writes, the other ranks hold the same state."""
    if runtime.checkpoint_path is not None and rank == 0:
        save_checkpoint(runtime.checkpoint_path, config, state)


def _launch(config: PretrainConfig, images: np.ndarray | Tensor, runtime: Runtime) -> TrainResult:
    """Rank 0 here (with the callbacks), the other ranks in spawned processes, images shared."""
    # On the device: one shared copy in memory. Streamed: a lazy cache view pickles as its path and
    # rows, and each rank reads its batches from the memory map.
    data = (
        _to_tensor(images).share_memory_()  # type: ignore[no-untyped-call]  # unannotated in torch
        if runtime.data_on_device
        else images
    )
    device = torch.device(runtime.device)
    backend = runtime.backend or distributed.default_backend(device.type)
    # The other ranks resume from the same checkpoint but never write it, and report nothing.
    quiet = dataclasses.replace(runtime, on_progress=None, should_stop=None, should_yield=None, on_step=None)
    return distributed.launch(
        pretrain, runtime.world_size, backend, args=(config, data, runtime), child_args=(config, data, quiet)
    )


def _rank_device(device: torch.device) -> torch.device:
    if device.type == "cuda" and distributed.active():
        device = torch.device("cuda", distributed.rank_and_world()[0])
        torch.cuda.set_device(device)
    return device


def train_one_epoch(
    state: _State,
    data: np.ndarray | Tensor,
    config: PretrainConfig,
    runtime: Runtime,
    step_fn: Callable[[Tensor, Tensor], Tensor],
    apply: Apply,
    batch_size: int,
    steps_per_epoch: int,
) -> str:
    """One epoch, or what is left of it after ``state.step_in_epoch``: "done", "cancelled" (part-way;
    its steps since the last checkpoint are then discarded by the caller), "out of time" (the time
    budget ran out part-way; its steps are kept) or "yielded" (a checkpoint written part-way, see
    Runtime.should_yield)."""
    device = _rank_device(torch.device(runtime.device))
    rank, world = distributed.rank_and_world()
    local = batch_size // world
    order_gen = torch.Generator().manual_seed(_epoch_seed(config.seed, state.epoch, 0))
    aug_gen = torch.Generator(device=device).manual_seed(_epoch_seed(config.seed, state.epoch, 1))
    if state.step_in_epoch and state.views_state is not None:  # resumed mid-epoch: the same views follow
        aug_gen.set_state(state.views_state.cpu())
    order = torch.randperm(len(data), generator=order_gen)
    state.model.train()
    losses: list[Tensor] = []
    pace = state.pace or _pace(config, runtime, state.elapsed_s, steps_per_epoch)
    clock = runtime.clock
    first = state.step_in_epoch
    tick, tick_step = clock(), first
    saved_at = tick
    outcome = "done"
    for i in range(first, steps_per_epoch):
        # Every rank decides together (rank 0's clock and flags, the largest code wins): they stop,
        # write a checkpoint or pause at the same step. A session's first step never pauses.
        code = _step_code(runtime, pace, pace.session_steps > 0, clock() - saved_at)
        code = distributed.any_rank_code(code, device) if distributed.active() else code
        if code == _CANCEL:
            return "cancelled"
        if code == _OUT_OF_TIME:  # where the run ends: its last checkpoint (pretrain) holds the step reached
            outcome = "out of time"
            state.step_in_epoch, state.views_state = i, aug_gen.get_state()
            break
        if code in (_YIELD, _CHECKPOINT) and i > first:  # at ``first`` the checkpoint already holds this step
            state.loss_history.extend(_finite_losses(losses, state.epoch))
            losses = []
            state.step_in_epoch, state.views_state, state.elapsed_s = i, aug_gen.get_state(), pace.elapsed()
            _save(runtime, config, state, rank)
            saved_at = clock()
        if code == _YIELD:
            return "yielded"
        global_step = state.epoch * steps_per_epoch + i
        total_steps = pace.total_steps(global_step)
        _set_lr(state.optimizer, config, global_step, steps_per_epoch, batch_size, total_steps)
        start = i * batch_size + rank * local  # this rank's slice of the global batch
        batch = _gather(data, order[start : start + local], device)
        y1, y2 = two_views(
            batch, aug_gen, configs=config.views(), apply=apply, shard=(rank, world)
        )  # (B / world, 3, R, R) each, on the device
        loss = step_fn(y1, y2)
        losses.append(loss.detach())
        if runtime.on_step is not None:
            runtime.on_step()
        pace.step_done()
        now = clock()
        due = (
            (i + 1) % runtime.log_every == 0
            or i + 1 == steps_per_epoch
            or pace.session_steps == 1
            or now - tick >= runtime.progress_every_s
        )
        if runtime.on_progress is not None and due:
            rate = (i + 1 - tick_step) * batch_size / max(now - tick, 1e-9)
            runtime.on_progress(
                Progress(
                    state.epoch,
                    global_step + 1,
                    steps_per_epoch,
                    float(loss.detach()),
                    rate,
                    state.optimizer.param_groups[0]["lr"],
                    elapsed_s=round(pace.elapsed(), 1),
                    eta_s=pace.eta_s(global_step + 1),
                    total_steps=total_steps,
                )
            )
            tick, tick_step = now, i + 1
    state.elapsed_s = pace.elapsed()
    state.loss_history.extend(_finite_losses(losses, state.epoch))
    return outcome


# A step's decision (``_step_code``), the largest first when ranks disagree.
_GO, _CHECKPOINT, _YIELD, _OUT_OF_TIME, _CANCEL = range(5)


def _step_code(runtime: Runtime, pace: Pace, may_pause: bool, since_saved_s: float) -> int:
    """What happens before the next step: cancel, end (time budget spent), pause at a checkpoint,
    write a checkpoint and go on, or go on. ``may_pause``: a checkpoint here would hold new steps."""
    if runtime.should_stop is not None and runtime.should_stop():
        return _CANCEL
    if pace.out_of_time():
        return _OUT_OF_TIME
    if not may_pause or runtime.checkpoint_path is None:
        return _GO
    if runtime.should_yield is not None and runtime.should_yield():
        return _YIELD
    every = runtime.checkpoint_every_s
    return _CHECKPOINT if every is not None and since_saved_s >= every else _GO


def _finite_losses(losses: list[Tensor], epoch: int) -> list[float]:
    """The steps' losses as floats (one device sync); a non-finite one ends the run before any
    checkpoint holds it."""
    values = torch.stack(losses).float().tolist() if losses else []
    if not all(np.isfinite(values)):
        raise FloatingPointError(f"non-finite loss in epoch {epoch}; checkpoint left as it was")
    return values


def make_train_step(
    model: BarlowTwins, optimizer: LARS, device: torch.device, compile: bool, forward: torch.nn.Module | None = None
) -> Callable[[Tensor, Tensor], Tensor]:
    """Forward both views, backward, LARS step: (B, 3, R, R) x 2 -> loss.

    ``forward``: the module to call, when it wraps ``model`` (DistributedDataParallel)."""
    cuda = device.type == "cuda"
    if cuda:
        model.to(memory_format=torch.channels_last)
    module = forward or model
    run: Callable[..., Tensor] = torch.compile(module) if compile else module

    def step(y1: Tensor, y2: Tensor) -> Tensor:
        if cuda:
            y1 = y1.contiguous(memory_format=torch.channels_last)
            y2 = y2.contiguous(memory_format=torch.channels_last)
        # bf16 on CUDA only: CPU autocast is slower than fp32 on most CPUs we run on.
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = run(y1, y2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        optimizer.step()
        return loss

    return step


def compiled_augment() -> Apply:
    """apply_params fused by torch.compile: ~40 elementwise passes per view become a few."""
    return torch.compile(apply_params, dynamic=False)


def _resume_or_start(config: PretrainConfig, runtime: Runtime, device: torch.device) -> _State:
    model = build_model(config)
    if distributed.active():
        # Before the optimiser is built: the conversion makes new BN modules (same names).
        # The root is no BatchNorm: the same (converted in place) model comes back.
        model = cast(BarlowTwins, distributed.convert_batchnorm(model, device))
    model = model.to(device)
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
        state.elapsed_s = float(ckpt.get("elapsed_s", 0.0))  # a budgeted run resumes with what is left
        state.step_in_epoch = int(ckpt.get("step_in_epoch", 0))  # checkpoints of epoch ends only: 0
        state.views_state = ckpt.get("views_state")
    return state


def save_checkpoint(path: str | os.PathLike[str], config: PretrainConfig, state: _State) -> None:
    """Config, model, optimiser, epochs done (and steps of the next, with its views' generator state)
    and loss history; written atomically."""
    payload = {
        "version": CHECKPOINT_VERSION,
        "config": config.to_dict(),
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "epoch": state.epoch,
        "loss_history": state.loss_history,
        "elapsed_s": state.elapsed_s,
        "step_in_epoch": state.step_in_epoch,
        "views_state": state.views_state,
    }
    with replaced(path) as f:  # a crash or a full disk mid-write never leaves a torn checkpoint
        torch.save(payload, f)


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[PretrainConfig, dict[str, Any]]:
    ckpt = torch.load(path, map_location=device, weights_only=True)
    return PretrainConfig.from_dict(ckpt["config"]), ckpt


def _set_lr(
    optimizer: LARS,
    config: PretrainConfig,
    step: int,
    steps_per_epoch: int,
    batch_size: int,
    total_steps: int | None = None,
) -> None:
    if config.time_budget_s is None:
        total, warmup = config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch
    else:
        total = total_steps or config.epochs * steps_per_epoch
        warmup = max(1, round(BUDGET_WARMUP_FRACTION * total))
    lr = learning_rate(step, total_steps=total, warmup_steps=warmup, batch_size=batch_size)
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
    # ``data`` may be an array, a memory map or a lazy cache view: indexing reads just these rows.
    rows = index.numpy()
    return torch.from_numpy(np.ascontiguousarray(data[rows])).to(device, non_blocking=True)


def _epoch_seed(seed: int, epoch: int, stream: int) -> int:
    return (seed * 1_000_003 + epoch) * 2 + stream


def _check_images(images: np.ndarray | Tensor, config: PretrainConfig) -> None:
    r = config.model.resolution
    if tuple(images.shape[1:]) != (r, r, 3) or images.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"expected uint8 images of shape (N, {r}, {r}, 3), got {images.dtype} {tuple(images.shape)}")
    if len(images) < 2:
        raise ValueError("pretraining needs at least 2 images")
