"""The Barlow Twins loss (Zbontar et al., 2021), as in facebookresearch/barlowtwins.

The reference standardises each embedding dimension along the batch with a
``BatchNorm1d(affine=False)`` in training mode (biased variance, eps=1e-5), forms the
cross-correlation ``c = z1ᵀ z2 / N`` and sums ``(1 - c_ii)²`` plus ``λ c_ij²`` for ``i ≠ j``.
We do the same arithmetic without the BN module, so that the loss holds no state and
is always in "training mode", and in float32 even under bf16 autocast: the sum runs over
D² terms and bf16 would lose the small off-diagonal ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

DEFAULT_LAMBDA = 0.0051
BN_EPS = 1e-5  # BatchNorm1d's default, which the reference relies on


def standardise(z: Tensor, eps: float = BN_EPS) -> Tensor:
    """Per-dimension zero mean, unit (biased) variance along the batch: (N, D) -> (N, D)."""
    z = z.float()
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    return (z - mean) * torch.rsqrt(var + eps)


def cross_correlation(z1: Tensor, z2: Tensor) -> Tensor:
    """Empirical cross-correlation of two (N, D) embeddings: (D, D)."""
    n = z1.shape[0]
    with torch.autocast(device_type=z1.device.type, enabled=False):
        return standardise(z1).T @ standardise(z2) / n


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float = DEFAULT_LAMBDA) -> Tensor:
    """Σ_i (1 - c_ii)² + λ Σ_{i≠j} c_ij² for projector outputs z1, z2 of shape (N, D)."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (N, D) embeddings of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError("Barlow Twins needs a batch of at least 2 to standardise along it")
    c = cross_correlation(z1, z2)
    diag = torch.diagonal(c)
    on_diag = (diag - 1).pow(2).sum()
    # Σ over all c² minus the diagonal's share: the same as the reference's off_diagonal()
    # gather, without materialising a D²-sized copy.
    off_diag = c.pow(2).sum() - diag.pow(2).sum()
    return on_diag + lambd * off_diag


class BarlowTwinsLoss(nn.Module):
    def __init__(self, lambd: float = DEFAULT_LAMBDA) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return barlow_twins_loss(z1, z2, self.lambd)
