"""Fine-tuned suggestions: the pretrained backbone and a multilabel head trained end to end on the
labeled images (sigmoid + positive-weighted BCE per label, never a softmax), as an alternative
scorer to the frozen linear probe.

A probe run that fine-tunes needs scores no model was fitted to, for the same reasons the frozen
probe does (precision-targeted thresholds, calibration, likely mistakes): ``cross_fit`` trains one
network per fold on the other folds and scores the held-out fold with it, then one network on every
labeled image, which scores the unlabeled ones. The run keeps whichever scorer, frozen or
fine-tuned, has the better out-of-fold mAP.

The recipe is the one ``bench/label_efficiency.py`` measured (and uses, for its "fine-tuned" and
"supervised from scratch" figures): AdamW with a one-cycle schedule, batches of up to 64 images
augmented like the pretraining's first view, 60 epochs, held to ``max_steps`` steps on a large
labeled set.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labeling.ml.augment import VIEW1, ViewConfig, augment, normalize, to_float
from labeling.ml.backbone import ModelConfig, resnet18_backbone
from labeling.ml.files import replaced
from labeling.ml.probe import folds


# How the labeled images are augmented: "pretrain", the pretraining's first view (crops of 20-100 %,
# colour jitter, grayscale, blur; the recipe bench/label_efficiency.py measured); "light", crops of
# 70-100 % and mirror images only (a small crop of a scene can cut out an object its tags name).
# "light" scored below "pretrain" at every size on both scene families (0.443 against 0.492 at 400
# demo labels, 0.300 against 0.338 on the second family; bench/results/finetune_scorer_cpu_*_seed1*.json).
VIEWS = {
    "pretrain": VIEW1,
    "light": ViewConfig(scale=(0.7, 1.0), jitter_p=0.0, grayscale_p=0.0, blur_p=0.0),
}


@dataclass(frozen=True)
class FinetuneConfig:
    view: str = "pretrain"
    epochs: int = 60
    max_steps: int = 600  # per network: a large labeled set trains for fewer epochs, not for longer
    lr: float = 1e-3
    weight_decay: float = 5e-4
    batch_size: int = 64
    folds: int = 3
    seed: int = 0


class Paused(Exception):
    """A fit handed the worker back (``should_yield``): ``done`` (fold -> its held-out rows' scores)
    and ``current`` (the network under way, or None) resume it; ``total``: the networks of the whole fit."""

    def __init__(self, done: dict[int, np.ndarray], total: int, current: dict[str, Any] | None):
        super().__init__(f"paused after {len(done)} of {total} networks")
        self.done, self.total, self.current = done, total, current


class Stopped(Exception):
    """``should_stop`` said so (a cancel, a lost claim): no network is returned."""


class FinetunedNet(nn.Module):
    """Backbone + linear head: uint8 (B, R, R, 3) images -> (B, L) logits (through ``scores``)."""

    def __init__(self, model: ModelConfig, labels: int) -> None:
        super().__init__()
        self.model = model
        self.backbone = resnet18_backbone(small_stem=model.uses_small_stem, width=model.width)
        self.head = nn.Linear(model.feature_dim, labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.backbone(x))
        return logits


def supervised_epoch(
    backbone: nn.Module,
    head: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    order: torch.Tensor,
    batch: int,
    steps: int,
    pos_weight: torch.Tensor,
    generator: torch.Generator,
    view: ViewConfig = VIEW1,
) -> None:
    """One epoch: ``steps`` batches of ``batch`` images taken in ``order``, each augmented as ``view``
    says (the pretraining's view 1 by default; with ``generator``) and trained with positive-weighted BCE, the scheduler
    stepped after every batch. (The benches' supervised baselines train with it too.)"""
    for i in range(steps):
        idx = order[i * batch : (i + 1) * batch].to(images.device)
        x = augment(to_float(images[idx]), view, generator)
        loss = F.binary_cross_entropy_with_logits(head(backbone(x)), labels[idx], pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        sched.step()


def fit(
    backbone_state: dict[str, torch.Tensor] | None,
    model: ModelConfig,
    images: np.ndarray,
    labels: np.ndarray,
    config: FinetuneConfig = FinetuneConfig(),
    *,
    device: str | torch.device = "cpu",
    should_stop: Callable[[], bool] | None = None,
    should_yield: Callable[[], bool] | None = None,
    resume: dict[str, Any] | None = None,
) -> FinetunedNet:
    """One network trained on uint8 (N, R, R, 3) ``images`` and their (N, L) 0/1 ``labels``, from
    ``backbone_state`` (a backbone's own state dict; None: random weights). Raises Stopped when
    ``should_stop`` (checked every epoch) says so. Before every epoch but the first of the call,
    ``should_yield`` may pause it: Paused's ``current`` (the network, optimiser and augmentation
    generator as they are, and the next epoch) given back as ``resume`` continues it exactly."""
    torch.manual_seed(config.seed)
    net = FinetunedNet(model, labels.shape[1])
    if backbone_state is not None:
        net.backbone.load_state_dict(backbone_state)
    net.to(device).train()
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    y = torch.from_numpy(np.asarray(labels, dtype=np.float32)).to(device)
    pos = y.sum(0)
    pos_weight = (len(y) - pos).clamp(min=1) / pos.clamp(min=1)
    batch = min(config.batch_size, len(x))
    per_epoch = max(1, len(x) // batch)
    epochs = max(1, min(config.epochs, math.ceil(config.max_steps / per_epoch)))
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=epochs * per_epoch)
    g = torch.Generator(device=device).manual_seed(config.seed)
    first = 0
    if resume is not None:
        net.load_state_dict(resume["net"])
        opt.load_state_dict(resume["opt"])
        g.set_state(resume["generator"])
        first = int(resume["epoch"])
        with warnings.catch_warnings():  # the schedule replayed to where it was, without optimiser steps
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(first * per_epoch):
                sched.step()
    for epoch in range(first, epochs):
        if should_stop is not None and should_stop():
            raise Stopped
        if epoch > first and should_yield is not None and should_yield():
            state = {"net": net.state_dict(), "opt": opt.state_dict(), "generator": g.get_state(), "epoch": epoch}
            raise Paused({}, 1, state)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed + epoch))
        supervised_epoch(
            net.backbone, net.head, opt, sched, x, y, order=order, batch=batch, steps=per_epoch,
            pos_weight=pos_weight, generator=g, view=VIEWS[config.view],
        )  # fmt: skip
    return net.eval()


@torch.inference_mode()
def predict(net: FinetunedNet, images: Any, *, device: str | torch.device = "cpu", batch_size: int = 256) -> np.ndarray:
    """uint8 (N, R, R, 3) images (an array or anything that slices like one, such as a cache view)
    -> float32 (N, L) probabilities."""
    was_training = net.training
    net.eval().to(device)
    out = np.empty((len(images), net.head.out_features), dtype=np.float32)
    try:
        for start in range(0, len(images), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(device)
            out[start : start + len(chunk)] = torch.sigmoid(net(normalize(to_float(chunk)))).float().cpu().numpy()
    finally:
        net.train(was_training)
    return out


def cross_fit(
    backbone_state: dict[str, torch.Tensor] | None,
    model: ModelConfig,
    images: np.ndarray,
    labels: np.ndarray,
    config: FinetuneConfig = FinetuneConfig(),
    *,
    device: str | torch.device = "cpu",
    should_stop: Callable[[], bool] | None = None,
    should_yield: Callable[[], bool] | None = None,
    done: dict[int, np.ndarray] | None = None,
    current: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    final: bool = True,
) -> tuple[FinetunedNet | None, np.ndarray]:
    """(the network trained on every image, (N, L) out-of-fold probabilities): each fold scored by a
    network trained on the others. ``progress(done, total)`` after each network. ``final=False``:
    the out-of-fold scores alone (no network on every image; None in its place).

    Pausing: between two epochs or two networks, once it has trained an epoch since it (re)started,
    ``should_yield`` may hand the worker back: it raises Paused with every finished fold's scores
    (``done``) and the network under way (``current``, with its index: a fold, or len(folds) for the
    network on every image). Given back, they resume it on the same images and labels; every
    network is seeded alone and its optimiser and generator travel with it, so a paused and resumed
    fit gives what one fit gives."""
    parts = folds(len(images), config.folds, config.seed)
    oof = np.zeros(labels.shape, dtype=np.float32)
    total = len(parts) + int(final)
    done = {} if done is None else dict(done)
    trained = False  # an epoch since this call began: only then may it pause

    def one(index: int, rows: np.ndarray) -> FinetunedNet:
        nonlocal trained
        resume = current if current is not None and current["index"] == index else None
        if trained and resume is None and should_yield is not None and should_yield():
            raise Paused(done, total, None)
        try:
            net = fit(
                backbone_state, model, images[rows], labels[rows], config, device=device,
                should_stop=should_stop, should_yield=should_yield, resume=resume,
            )  # fmt: skip
        except Paused as stop:
            raise Paused(done, total, {**(stop.current or {}), "index": index}) from None
        trained = True
        return net

    for i, held in enumerate(parts):
        if i in done:
            oof[held] = done[i]
            continue
        net = one(i, np.setdiff1d(np.arange(len(images)), held))
        oof[held] = done[i] = predict(net, images[held], device=device)
        if progress is not None:
            progress(len(done), total)
    if not final:
        return None, oof
    net = one(len(parts), np.arange(len(images)))
    if progress is not None:
        progress(total, total)
    return net, oof


def save_net(path: str | os.PathLike[str], net: FinetunedNet, config: FinetuneConfig) -> None:
    """The network, written atomically (a shard task on any worker loads it)."""
    model = {**asdict(net.model), "projector": list(net.model.projector)}
    with replaced(path) as f:
        torch.save(
            {"model": model, "config": asdict(config), "labels": net.head.out_features, "state": net.state_dict()}, f
        )


def load_net(path: str | os.PathLike[str]) -> FinetunedNet:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = ModelConfig(**{**saved["model"], "projector": tuple(saved["model"]["projector"])})
    net = FinetunedNet(model, int(saved["labels"]))
    net.load_state_dict(saved["state"])
    return net.eval()
