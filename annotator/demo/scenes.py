"""Procedural scenes: shapes of a few classes on textured backgrounds, with exact ground truth.

The demo project, the tests and the benchmarks all draw their images from here, so that the
model-assisted features can be measured on data whose true labels we know. Scene ``i`` of seed
``s`` is always the same image, whatever ``n`` is asked for: a benchmark can regenerate any subset.

Pure Pillow + NumPy; never imports Django or torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

LABELS: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross")
# Unequal class frequencies, as in real projects: some labels are rare.
LABEL_WEIGHTS: tuple[float, ...] = (0.30, 0.25, 0.18, 0.12, 0.09, 0.06)
LABEL_COLOURS: dict[str, str] = {
    "circle": "#e6194b",
    "square": "#3cb44b",
    "triangle": "#4363d8",
    "star": "#f58231",
    "ring": "#911eb4",
    "cross": "#42d4f4",
}


@dataclass(frozen=True)
class SceneObject:
    label: str
    box: tuple[float, float, float, float]  # x, y, w, h in image pixels


@dataclass(frozen=True)
class Scene:
    index: int
    image: Image.Image
    objects: tuple[SceneObject, ...]

    @property
    def labels(self) -> frozenset[str]:
        return frozenset(o.label for o in self.objects)


def generate(n: int, *, seed: int = 0, size: tuple[int, int] = (256, 256), start: int = 0) -> Iterator[Scene]:
    """Yield scenes ``start .. start+n-1`` of ``seed``."""
    for index in range(start, start + n):
        yield render_scene(index, seed=seed, size=size)


def render_scene(index: int, *, seed: int = 0, size: tuple[int, int] = (256, 256)) -> Scene:
    rng = np.random.default_rng((seed, index))
    width, height = size
    image = _background(rng, width, height)
    draw = ImageDraw.Draw(image)
    objects: list[SceneObject] = []
    placed: list[tuple[float, float, float]] = []  # centre and radius of the shapes drawn so far
    for _ in range(int(rng.integers(1, 4))):
        label = LABELS[int(rng.choice(len(LABELS), p=LABEL_WEIGHTS))]
        box = _draw_object(image, draw, rng, label, width, height, placed)
        if box is not None:
            objects.append(SceneObject(label=label, box=box))
    if rng.random() < 0.3:  # a little blur now and then, as a camera would
        image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.2))))
    return Scene(index=index, image=image, objects=tuple(objects))


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A textured background (gradient, stripes, checker or smooth noise) of muted contrast.

    Real photographs have clutter, but the objects to label usually stand out from it: the
    texture is blended toward its own mean colour so that its luminance swings by at most
    about +-40 of 255, less than the contrast every shape is drawn with (see ``_fill``).
    """
    c1, c2 = rng.integers(0, 256, size=(2, 3))
    kind = int(rng.integers(0, 4))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = min(width, height) / 256  # texture periods relative to the image, not absolute pixels
    if kind == 0:  # linear gradient
        angle = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(angle) + yy * math.sin(angle)) / max(width, height)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == 1:  # stripes
        period = rng.uniform(10, 40) * scale
        angle = rng.uniform(0, math.pi)
        t = 0.5 + 0.5 * np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / max(period, 2.0))
    elif kind == 2:  # checker
        cell = max(2, int(rng.integers(12, 48) * scale))
        t = (((xx // cell) + (yy // cell)) % 2).astype(np.float32)
    else:  # smooth noise: coarse random field, upsampled
        coarse = rng.random((max(2, height // 32), max(2, width // 32))).astype(np.float32)
        t = (
            np.asarray(
                Image.fromarray((coarse * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC),
                dtype=np.float32,
            )
            / 255.0
        )
    pixels = c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]
    mean = pixels.reshape(-1, 3).mean(axis=0)
    swing = float(np.ptp(luminance(pixels))) / 2
    amount = float(rng.uniform(0.35, 1.0)) * min(1.0, 40.0 / max(swing, 1e-6))  # luminance swing <= ~40
    pixels = mean + (pixels - mean) * amount
    pixels += rng.normal(0, 5, size=pixels.shape)  # sensor noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _fill(rng: np.random.Generator, local: np.ndarray, margin: float = 70.0) -> tuple[int, int, int]:
    """A random colour whose luminance differs from the local background's mean by ``margin``.

    Hue and saturation stay random and independent of the label, so the colour says nothing
    about the class; only the shape does.
    """
    background = float(luminance(local.reshape(-1, 3).astype(np.float32)).mean())
    for _ in range(32):
        colour = rng.integers(0, 256, size=3)
        if abs(float(luminance(colour.astype(np.float32))) - background) >= margin:
            return tuple(int(v) for v in colour)
    # Rare fallback: push the last colour toward black or white, whichever is further away.
    target = 0.0 if background > 127.5 else 255.0
    need = max(0.0, margin - abs(float(luminance(colour.astype(np.float32))) - background))
    shifted = colour + np.sign(target - background) * need * 1.2
    return tuple(int(v) for v in np.clip(shifted, 0, 255))


def _draw_object(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    label: str,
    width: int,
    height: int,
    placed: list[tuple[float, float, float]],
) -> tuple[float, float, float, float] | None:
    short = min(width, height)
    # Large objects (radius 18-38% of the short side) with mild occlusion: a new shape's centre
    # keeps at least 70% of the two radii away from earlier ones; where none fits, it is left out.
    for _ in range(20):
        radius = float(rng.uniform(0.18, 0.38)) * short
        cx = float(rng.uniform(radius, width - radius))
        cy = float(rng.uniform(radius, height - radius))
        if all(math.hypot(cx - x, cy - y) >= 0.7 * (radius + r) for x, y, r in placed):
            break
    else:
        return None
    placed.append((cx, cy, radius))
    x0, y0 = max(0, int(cx - radius)), max(0, int(cy - radius))
    x1, y1 = min(width, int(cx + radius) + 1), min(height, int(cy + radius) + 1)
    fill = _fill(rng, np.asarray(image)[y0:y1, x0:x1])
    rotation = float(rng.uniform(0, 2 * math.pi))
    if label in ("circle", "ring"):
        bbox = (cx - radius, cy - radius, cx + radius, cy + radius)
        if label == "circle":
            draw.ellipse(bbox, fill=fill)
        else:
            draw.ellipse(bbox, outline=fill, width=max(2, int(radius * 0.3)))
        points = [(bbox[0], bbox[1]), (bbox[2], bbox[3])]
    elif label == "cross":
        arm = radius * 0.3
        bars = [(-radius, -arm, radius, arm), (-arm, -radius, arm, radius)]
        points = []
        for bx0, by0, bx1, by1 in bars:
            rect = _rotate([(bx0, by0), (bx1, by0), (bx1, by1), (bx0, by1)], rotation, cx, cy)
            draw.polygon(rect, fill=fill)
            points.extend(rect)
    else:
        corners = {"square": 4, "triangle": 3, "star": 10}[label]
        points = []
        for k in range(corners):
            r = radius * (0.45 if label == "star" and k % 2 else 1.0)
            a = 2 * math.pi * k / corners
            points.append((r * math.cos(a), r * math.sin(a)))
        points = _rotate(points, rotation, cx, cy)
        draw.polygon(points, fill=fill)
    xs = [min(max(p[0], 0.0), width) for p in points]
    ys = [min(max(p[1], 0.0), height) for p in points]
    box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    return box if box[2] >= 1 and box[3] >= 1 else None


def _rotate(points: list[tuple[float, float]], angle: float, cx: float, cy: float) -> list[tuple[float, float]]:
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in points]
