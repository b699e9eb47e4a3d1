import torch
from torch import nn

from labeling.ml.barlow import barlow_twins_loss


def off_diagonal(x):
    # verbatim from facebookresearch/barlowtwins main.py
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def reference_loss(z1, z2, lambd=0.0051):
    # facebookresearch/barlowtwins main.py, BarlowTwins.forward after the projector (one GPU)
    bn = nn.BatchNorm1d(z1.shape[1], affine=False)
    c = bn(z1).T @ bn(z2)
    c.div_(z1.shape[0])
    on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
    off_diag = off_diagonal(c).pow_(2).sum()
    return on_diag + lambd * off_diag


def test_it_equals_the_reference_formula_on_random_inputs():
    g = torch.Generator().manual_seed(0)
    for n, d, lambd in [(32, 64, 0.0051), (8, 128, 0.0051), (64, 16, 0.1)]:
        z1 = torch.randn(n, d, generator=g) * 3 + 1
        z2 = 0.5 * z1 + torch.randn(n, d, generator=g)
        ours, ref = barlow_twins_loss(z1, z2, lambd), reference_loss(z1, z2, lambd)
        assert abs(ours.item() - ref.item()) / ref.item() < 1e-5


def test_it_is_invariant_to_per_feature_affine_transforms():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(64, 32, generator=g), torch.randn(64, 32, generator=g)
    z2 = z2 + z1
    base = barlow_twins_loss(z1, z2)
    # Each view its own positive scale and shift per feature...
    a1, a2 = torch.rand(32, generator=g) * 4 + 0.5, torch.rand(32, generator=g) * 4 + 0.5
    b1, b2 = torch.randn(32, generator=g) * 10, torch.randn(32, generator=g) * 10
    moved = barlow_twins_loss(a1 * z1 + b1, a2 * z2 + b2)
    assert torch.allclose(moved, base, rtol=1e-4)
    # ...and a shared sign flip of a feature (c_ij flips sign, c_ii does not).
    sign = torch.where(torch.rand(32, generator=g) < 0.5, -1.0, 1.0)
    assert torch.allclose(barlow_twins_loss(sign * z1, sign * z2), base, rtol=1e-4)


def test_it_is_near_zero_for_identical_decorrelated_views():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(256, 32, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(z - z.mean(dim=0))  # zero-mean, orthogonal columns
    q = q.float() * 7  # the loss standardises, so the scale must not matter
    assert barlow_twins_loss(q, q).item() < 1e-3


def test_it_is_large_for_collapsed_embeddings():
    z = torch.ones(16, 8) + 1e-3 * torch.randn(16, 1)  # every feature the same signal
    assert barlow_twins_loss(z, z).item() > 8 * 7 * 0.0051 * 0.5


def test_its_gradient_flows_under_bf16_autocast():
    z1 = torch.randn(16, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = barlow_twins_loss(z1.bfloat16(), torch.randn(16, 8).bfloat16())
    assert loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(z1.grad).all()
