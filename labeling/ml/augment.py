"""Barlow Twins augmentations as batched tensor ops with per-sample random parameters.

The reference (facebookresearch/barlowtwins ``Transform``) runs, per image in PIL on the CPU:
random resized crop (scale 0.2-1, ratio 3/4-4/3), horizontal flip, colour jitter
(0.4, 0.4, 0.2, 0.1) with p=0.8 in a random order, grayscale p=0.2, Gaussian blur
(p=1.0 on view 1, 0.1 on view 2; sigma 0.1-2.0 at 224 px), solarize (p=0 / 0.2).
Here every step is one tensor op over the whole batch on the training device, and each
sample draws its own parameters from a ``torch.Generator``, so a seed fixes the views.

Parameters are drawn by :func:`sample_params` and applied by :func:`apply_params`; the split
lets tests check the draws' distributions and the ops separately, and keeps the random
draws out of anything that ``torch.compile`` traces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale (ITU-R 601-2 luma)
REFERENCE_RESOLUTION = 224  # the blur sigmas below are for this size; we scale them to ours
CROP_ATTEMPTS = 10  # as torchvision's RandomResizedCrop
SOLARIZE_THRESHOLD = 0.5  # PIL's 128 of 255 on uint8 pixels


@dataclass(frozen=True)
class ViewConfig:
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 1.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # at REFERENCE_RESOLUTION
    solarize_p: float = 0.0


# The reference's asymmetric pair: view 1 always blurred, view 2 sometimes solarized.
VIEW1 = ViewConfig(blur_p=1.0, solarize_p=0.0)
VIEW2 = ViewConfig(blur_p=0.1, solarize_p=0.2)


@dataclass
class ViewParams:
    """Per-sample parameters for a batch of B images."""

    crop: Tensor  # (B, 4) x0, y0, w, h as fractions of the source width/height
    flip: Tensor  # (B,) bool
    jitter: Tensor  # (B,) bool: colour jitter applied at all
    factors: Tensor  # (B, 4) brightness, contrast, saturation, hue shift
    order: Tensor  # (B, 4) long: a permutation of the four jitter ops, per sample
    grayscale: Tensor  # (B,) bool
    blur: Tensor  # (B,) bool
    sigma: Tensor  # (B,) blur sigma in output pixels
    solarize: Tensor  # (B,) bool
    blur_radius: int  # kernel radius from the config's largest sigma: no host sync to find it

    def __getitem__(self, index: slice | Tensor) -> "ViewParams":
        picked = {f.name: getattr(self, f.name) for f in fields(self)}
        sliced: dict[str, Any] = {k: v[index] if isinstance(v, Tensor) else v for k, v in picked.items()}
        return ViewParams(**sliced)


def _uniform(n: int, low: float, high: float, g: torch.Generator, *shape: int) -> Tensor:
    return low + (high - low) * torch.rand((n, *shape), generator=g, device=g.device)


def _bernoulli(n: int, p: float, g: torch.Generator) -> Tensor:
    return torch.rand(n, generator=g, device=g.device) < p


def sample_crops(n: int, height: int, width: int, cfg: ViewConfig, g: torch.Generator) -> Tensor:
    """torchvision's RandomResizedCrop draw, vectorised: (n, 4) fractional x0, y0, w, h.

    Boxes are continuous (sub-pixel) rather than rounded to whole pixels: at 64 px rounding
    would bias small crops' scale and aspect ratio.
    """
    area = _uniform(n, *cfg.scale, g, CROP_ATTEMPTS) * (height * width)
    log_r = _uniform(n, math.log(cfg.ratio[0]), math.log(cfg.ratio[1]), g, CROP_ATTEMPTS)
    w = torch.sqrt(area * torch.exp(log_r))  # (n, attempts) pixels
    h = torch.sqrt(area / torch.exp(log_r))
    ok = (w <= width) & (h <= height)
    first = torch.argmax(ok.int(), dim=1, keepdim=True)  # first valid attempt (0 if none)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    found = ok.any(dim=1)
    # Fallback, as torchvision: the whole image, cropped to the nearest allowed ratio.
    fw, fh = _fallback_size(height, width, cfg.ratio)
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))
    u = torch.rand((n, 2), generator=g, device=g.device)
    x0 = torch.where(found, u[:, 0] * (width - w), (width - w) / 2)
    y0 = torch.where(found, u[:, 1] * (height - h), (height - h) / 2)
    return torch.stack([x0 / width, y0 / height, w / width, h / height], dim=1)


def _fallback_size(height: int, width: int, ratio: tuple[float, float]) -> tuple[float, float]:
    in_ratio = width / height
    if in_ratio < ratio[0]:
        return float(width), width / ratio[0]
    if in_ratio > ratio[1]:
        return height * ratio[1], float(height)
    return float(width), float(height)


def sample_params(n: int, height: int, width: int, out_size: int, cfg: ViewConfig, g: torch.Generator) -> ViewParams:
    """Draw every random parameter for n images of (height, width), on ``g``'s device."""
    factors = torch.cat(
        [
            _uniform(n, max(0.0, 1 - cfg.brightness), 1 + cfg.brightness, g, 1),
            _uniform(n, max(0.0, 1 - cfg.contrast), 1 + cfg.contrast, g, 1),
            _uniform(n, max(0.0, 1 - cfg.saturation), 1 + cfg.saturation, g, 1),
            _uniform(n, -cfg.hue, cfg.hue, g, 1),
        ],
        dim=1,
    )
    scale = out_size / REFERENCE_RESOLUTION
    return ViewParams(
        crop=sample_crops(n, height, width, cfg, g),
        flip=_bernoulli(n, cfg.flip_p, g),
        jitter=_bernoulli(n, cfg.jitter_p, g),
        factors=factors,
        order=torch.argsort(torch.rand((n, 4), generator=g, device=g.device), dim=1),
        grayscale=_bernoulli(n, cfg.grayscale_p, g),
        blur=_bernoulli(n, cfg.blur_p, g),
        sigma=_uniform(n, cfg.blur_sigma[0] * scale, cfg.blur_sigma[1] * scale, g),
        solarize=_bernoulli(n, cfg.solarize_p, g),
        blur_radius=max(1, math.ceil(3 * cfg.blur_sigma[1] * scale)),
    )


# ---- the ops: x is (B, 3, H, W) float in [0, 1]; per-sample factors are (B,) ----


def resized_crop(x: Tensor, crop: Tensor, flip: Tensor, out_size: int) -> Tensor:
    """Crop each sample's box, flip it if asked and resize to out_size, in one grid_sample."""
    b = x.shape[0]
    x0, y0, w, h = crop.to(x.dtype).unbind(dim=1)
    sx = torch.where(flip, -w, w)  # a flip is a negative x scale about the box centre
    theta = torch.zeros((b, 2, 3), dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = sx
    theta[:, 0, 2] = 2 * x0 + w - 1  # box centre in [-1, 1] coordinates
    theta[:, 1, 1] = h
    theta[:, 1, 2] = 2 * y0 + h - 1
    grid = F.affine_grid(theta, [b, x.shape[1], out_size, out_size], align_corners=False)
    # Bilinear: crops are at most the source size, so this upsamples and no antialiasing is
    # needed; the reference's bicubic would add overshoot to clamp and ~2x the cost.
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(x: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma."""
    r, g, b = x.unbind(dim=1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def _per_sample(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def adjust_brightness(x: Tensor, f: Tensor) -> Tensor:
    return (x * _per_sample(f)).clamp(0, 1)


def adjust_contrast(x: Tensor, f: Tensor) -> Tensor:
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    f = _per_sample(f)
    return (f * x + (1 - f) * mean).clamp(0, 1)


def adjust_saturation(x: Tensor, f: Tensor) -> Tensor:
    f = _per_sample(f)
    return (f * x + (1 - f) * grayscale(x)).clamp(0, 1)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """torchvision's HSV hue rotation, without building the HSV image.

    Rotating hue keeps V (max) and chroma (max - min); each channel of the result is
    ``max - chroma * clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6h) mod 6``, n = 5, 3, 1.
    """
    r, g, b = x.unbind(dim=1)
    maxc = x.amax(dim=1)
    minc = x.amin(dim=1)
    chroma = maxc - minc
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    # Same tie-breaking as torchvision's _rgb2hsv: red first, then green, then blue.
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    h = torch.where(is_r, bc - gc, torch.where(is_g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.fmod(h / 6.0 + 1.0, 1.0)
    h = torch.remainder(h + shift.view(-1, 1, 1), 1.0) * 6.0  # (B, H, W) in [0, 6)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    k = torch.remainder(n + h.unsqueeze(1), 6.0)
    return maxc.unsqueeze(1) - chroma.unsqueeze(1) * torch.minimum(k, 4.0 - k).clamp(0, 1)


def colour_jitter(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """The four jitter ops in each sample's own random order (as torchvision's ColorJitter).

    Brightness, contrast and saturation are each a blend ``f x + (1 - f) target`` (target:
    black, the mean grey, the pixel's grey), so at each position one blend serves all three
    and only the hue rotation is computed separately: 4 blends + 4 hues instead of 16 ops.
    """
    for position in range(4):
        op = order[:, position]  # (B,) 0 brightness, 1 contrast, 2 saturation, 3 hue
        f = factors.gather(1, op.view(-1, 1)).view(-1, 1, 1, 1)
        gray = grayscale(x)  # (B, 1, H, W)
        op4 = op.view(-1, 1, 1, 1)
        target = torch.where(
            op4 == 1, gray.mean(dim=(1, 2, 3), keepdim=True), torch.where(op4 == 2, gray, torch.zeros_like(gray))
        )
        blended = (f * x + (1 - f) * target).clamp(0, 1)
        hued = adjust_hue(x, torch.where(op == 3, f.view(-1), torch.zeros_like(f.view(-1))))
        x = torch.where(op4 == 3, hued, blended)
    return x


def gaussian_blur(x: Tensor, sigma: Tensor, radius: int) -> Tensor:
    """Per-sample separable Gaussian blur with reflect padding (as torchvision's)."""
    b, c, h, w = x.shape
    radius = min(radius, h - 1, w - 1)  # reflect padding needs radius < size
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.to(x.dtype).view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (B*C, K)
    flat = F.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel.view(b * c, 1, 1, -1), groups=b * c)
    flat = F.conv2d(flat, kernel.view(b * c, 1, -1, 1), groups=b * c)
    return flat.view(b, c, h, w)


def _where(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return torch.where(mask.view(-1, 1, 1, 1), a, b)


def apply_params(x: Tensor, p: ViewParams, out_size: int) -> Tensor:
    """(B, 3, H, W) float in [0, 1] -> (B, 3, out_size, out_size) float in [0, 1]."""
    x = resized_crop(x, p.crop, p.flip, out_size)
    x = _where(p.jitter, colour_jitter(x, p.factors, p.order), x)
    x = _where(p.grayscale, grayscale(x).expand_as(x), x)
    # Every op runs on the whole batch and a mask picks per sample: testing "does any sample
    # blur?" would cost a host-device sync per step, more than the convolution itself.
    x = _where(p.blur, gaussian_blur(x, p.sigma, p.blur_radius), x)
    # PIL's solarize inverts pixels at or above the threshold.
    x = _where(p.solarize, torch.where(x >= SOLARIZE_THRESHOLD, 1 - x, x), x)
    return x


def to_float(images: Tensor) -> Tensor:
    """uint8 (B, H, W, 3) as the cache stores them -> float (B, 3, H, W) in [0, 1]."""
    return images.permute(0, 3, 1, 2).float().div_(255)


def normalize(x: Tensor) -> Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


Apply = Callable[[Tensor, ViewParams, int], Tensor]


def augment(
    x: Tensor,
    cfg: ViewConfig,
    g: torch.Generator,
    out_size: int | None = None,
    apply: Apply = apply_params,
    shard: tuple[int, int] = (0, 1),
) -> Tensor:
    """One normalised view of a float (B, 3, H, W) batch in [0, 1].

    ``apply`` may be a ``torch.compile``d :func:`apply_params`: the draws stay eager.
    ``shard=(rank, world)``: x is that rank's slice of a global batch of world * B; the draws are
    made for the global batch and sliced, so the views equal one process's on the whole batch.
    """
    b, _, h, w = x.shape
    out_size = out_size or h
    rank, world = shard
    params = sample_params(b * world, h, w, out_size, cfg, g)
    if world > 1:
        params = params[rank * b : (rank + 1) * b]
    return normalize(apply(x, params, out_size))


def two_views(
    images: Tensor,
    g: torch.Generator,
    out_size: int | None = None,
    configs: tuple[ViewConfig, ViewConfig] = (VIEW1, VIEW2),
    apply: Apply = apply_params,
    shard: tuple[int, int] = (0, 1),
) -> tuple[Tensor, Tensor]:
    """uint8 (B, H, W, 3) -> two normalised float views (B, 3, S, S), independent per sample."""
    x = to_float(images)
    return (augment(x, configs[0], g, out_size, apply, shard), augment(x, configs[1], g, out_size, apply, shard))
