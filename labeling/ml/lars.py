"""LARS and the warm-up + cosine schedule of facebookresearch/barlowtwins.

Biases and BatchNorm parameters (every 1-D parameter, as the reference decides) get neither
weight decay nor the layer-wise adaptation, and their own, smaller learning rate.
The update is the reference's, done with ``torch._foreach_*`` ops: one kernel per op for
all parameters instead of a Python loop of ~10 small kernels per parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn


class LARS(torch.optim.Optimizer):
    def __init__(
        self, params: Iterable[dict[str, Any]], *, weight_decay: float, momentum: float = 0.9, eta: float = 0.001
    ) -> None:
        # Each group carries its own "lars" flag: True for weights, False for biases and BN.
        super().__init__(params, dict(lr=0.0, weight_decay=weight_decay, momentum=momentum, eta=eta, lars=True))

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads: list[Tensor] = [p.grad for p in params]
            updates: Sequence[Tensor]
            if group["lars"]:
                updates = torch._foreach_add(grads, params, alpha=group["weight_decay"])
                param_norm = torch.stack(torch._foreach_norm(params))
                update_norm = torch.stack(torch._foreach_norm(updates))
                one = torch.ones_like(param_norm)
                trust = torch.where(
                    param_norm > 0.0, torch.where(update_norm > 0, group["eta"] * param_norm / update_norm, one), one
                )
                torch._foreach_mul_(updates, list(trust.unbind()))
            else:
                updates = grads
            mus = [self._momentum_buffer(p) for p in params]
            torch._foreach_mul_(mus, group["momentum"])
            torch._foreach_add_(mus, updates)
            torch._foreach_add_(params, mus, alpha=-group["lr"])

    def _momentum_buffer(self, p: Tensor) -> Tensor:
        state = self.state[p]
        if "mu" not in state:
            state["mu"] = torch.zeros_like(p)
        return cast(Tensor, state["mu"])


def parameter_groups(model: nn.Module) -> list[dict[str, Any]]:
    """[weights (LARS, weight decay), biases and BN (plain SGD with momentum)], as the reference."""
    weights = [p for p in model.parameters() if p.ndim != 1]
    biases = [p for p in model.parameters() if p.ndim == 1]
    return [{"params": weights, "lars": True}, {"params": biases, "lars": False, "weight_decay": 0.0}]


def learning_rate(step: int, *, total_steps: int, warmup_steps: int, batch_size: int) -> float:
    """The reference's schedule before the per-group factor: linear warm-up to batch/256,
    then a cosine down to 1/1000 of that."""
    base = batch_size / 256
    if step < warmup_steps:
        return base * step / warmup_steps
    step -= warmup_steps
    span = max(total_steps - warmup_steps, 1)
    q = 0.5 * (1 + math.cos(math.pi * step / span))
    end = base * 0.001
    return base * q + end * (1 - q)
