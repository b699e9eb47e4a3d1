"""Several GPUs on one host: Barlow Twins with global batch statistics across ranks.

The loss standardises each embedding dimension along the batch and averages the
cross-correlation over it, so a rank that computed it on its own slice would train a different
model with a smaller batch. As the reference (facebookresearch/barlowtwins) does, every statistic
is taken over the global batch:

* the projector outputs are all-gathered with autograd support (``gather_batch``) and every rank
  computes the same loss on the whole batch; the gather's backward sums the gradients from
  every rank's copy of the loss, and DDP's averaging divides that sum by the world size again,
  so the parameters get exactly the single-process gradient;
* every BatchNorm (backbone and projector) normalises with the global batch's mean and variance:
  ``nn.SyncBatchNorm`` on CUDA (NCCL, fused), :class:`GlobalBatchNorm` elsewhere (gloo on the
  CPU, where SyncBatchNorm refuses to run). Both make a two-process run match one process on
  the same global batch, up to float summation order; we chose exact equivalence over the
  cheaper per-GPU BN statistics (which the reference also avoids).

Each rank draws the augmentation parameters for the whole global batch from the same seeded
generator and applies its own slice, so the views equal the single process's too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

T = TypeVar("T")


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def gather_batch(z: Tensor) -> Tensor:
    """(n, D) on each rank -> (world * n, D) in rank order, differentiable: the global batch."""
    return _Gather.apply(z) if active() else z


def all_reduce_sum(x: Tensor) -> Tensor:
    """Σ over ranks, differentiable (the gradient of every rank's copy flows back to each input)."""
    return _AllReduce.apply(x) if active() else x


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, z: Tensor) -> Tensor:
        parts = [torch.empty_like(z) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, z.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> Tensor:
        # Every rank's loss used every row: this rank's rows get the sum of all ranks' gradients.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        rank, world = dist.get_rank(), dist.get_world_size()
        return grad.chunk(world, dim=0)[rank]


class _AllReduce(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are the global batch's (one all-reduce per layer).

    For backends without SyncBatchNorm (gloo on the CPU). Sums, sums of squares and the count go
    in one differentiable all-reduce; variance as E[x²] - E[x]² in float32 (inputs are
    normalised activations, far from the cancellation that formula fears).
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and active()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        count = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=torch.float32)
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])
        total = all_reduce_sum(local)
        c = x.shape[1]
        n = total[-1]
        mean, var = total[:c] / n, total[c : 2 * c] / n - (total[:c] / n) ** 2
        # The three buffers exist together, when track_running_stats (torch's _NormBase).
        running_mean, running_var, tracked = self.running_mean, self.running_var, self.num_batches_tracked
        if self.track_running_stats and running_mean is not None and running_var is not None and tracked is not None:
            with torch.no_grad():
                tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(tracked)
                running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                running_var.mul_(1 - m).add_(var.detach() * n / max(float(n) - 1, 1.0), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm in ``module`` made global: SyncBatchNorm on CUDA, GlobalBatchNorm otherwise."""
    if device.type == "cuda":
        # torch leaves convert_sync_batchnorm unannotated.
        synced: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(module)  # type: ignore[no-untyped-call]
        return synced
    return _to_global(module)


def _to_global(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            with torch.no_grad():
                out.weight.copy_(module.weight)
                out.bias.copy_(module.bias)
        if module.track_running_stats:
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                getattr(out, buffer).copy_(getattr(module, buffer))
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _to_global(child))
    return out


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is True on any: a stop request must stop all ranks at once."""
    if not active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def any_rank_code(code: int, device: torch.device) -> int:
    """The largest of every rank's code (e.g. 0 go on, 1 out of time, 2 cancelled), on every rank."""
    if not active():
        return code
    t = torch.tensor([float(code)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def default_backend(device_type: str) -> str:
    return "nccl" if device_type == "cuda" else "gloo"


def init_process_group(
    rank: int, world_size: int, backend: str, address: str = "127.0.0.1", port: int | None = None
) -> None:
    os.environ.setdefault("MASTER_ADDR", address)
    if port is not None:
        os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(backend, rank=rank, world_size=world_size)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def launch(
    fn: Callable[..., T], world_size: int, backend: str, args: tuple[Any, ...], child_args: tuple[Any, ...]
) -> T:
    """Run ``fn(*args)`` as rank 0 in this process and ``fn(*child_args)`` as ranks 1..world_size-1
    in spawned ones (torch.multiprocessing: tensors in ``child_args`` travel as shared memory).

    Rank 0 stays here so the caller's callbacks (progress, cancellation: closures over the
    database, which would not pickle) keep working; the other ranks only compute. Returns rank
    0's result.
    """
    from torch.multiprocessing.spawn import spawn

    port = free_port()
    # torch leaves spawn unannotated.
    context = spawn(
        _child,
        args=(fn, world_size, backend, port, child_args),  # type: ignore[no-untyped-call]
        nprocs=world_size - 1,
        join=False,
    )
    try:
        init_process_group(0, world_size, backend, port=port)
        try:
            return fn(*args)
        finally:
            dist.destroy_process_group()
    finally:
        while not context.join():
            pass


def _child(
    index: int, fn: Callable[..., object], world_size: int, backend: str, port: int, args: tuple[Any, ...]
) -> None:
    init_process_group(index + 1, world_size, backend, port=port)
    try:
        fn(*args)
    finally:
        dist.destroy_process_group()
