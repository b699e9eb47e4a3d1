"""Camera-like test photos for the import benchmarks: 4000×3000 JPEGs (12 megapixels, quality 90)
with an EXIF orientation tag, half of them rotated (orientation 6, as a phone held upright writes
it), the other half upright (orientation 1). A demo scene scaled up with sensor-like noise, so the
files are the size of real photos (a few MB), not flat colour."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

WIDTH, HEIGHT = 4000, 3000


def write_photos(folder: Path, count: int, *, seed: int = 3) -> list[Path]:
    """``count`` photos under ``folder`` (made in worker processes, so the caller's peak memory
    is not theirs). Returns the paths, rotated ones at odd indices."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"photo-{i:05d}.jpg", i, seed) for i in range(count)]
    with ProcessPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return list(pool.map(_write, jobs))


_NOISE = None


def _noise():
    import numpy as np

    global _NOISE
    if _NOISE is None:
        _NOISE = np.random.default_rng(0).normal(0, 6, (HEIGHT, WIDTH, 1)).astype(np.int16)
    return _NOISE


def _write(job: tuple[Path, int, int]) -> Path:
    import numpy as np
    from PIL import Image

    from annotator.demo.scenes import generate

    path, index, seed = job
    scene = next(iter(generate(1, seed=seed + index, size=(WIDTH // 8, HEIGHT // 8)))).image.convert("RGB")
    image = scene.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    noise = np.roll(_noise(), index * 7919, axis=1)  # one noise field per process, shifted per photo
    pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6 if index % 2 else 1
    Image.fromarray(pixels).save(path, "JPEG", quality=90, exif=exif.tobytes())
    return path
