"""Import throughput of `manage.py import_images`: generated 128×128 PNGs, or camera photos.

    python -m bench.import_throughput [--images 2000] [--size 128]
    python -m bench.import_throughput --photos 100 [--photo-dir DIR] [--name NAME]

Runs against a fresh embedded database (SQLite under a temporary var/) unless DATABASE_URL is set,
in which case that database is used (a project named after the run is created in it). Reference:
Label Studio 1.23.2 took 38.9 s for 2,000 such PNGs by upload on this kind of machine (≈51 images/s).

Photo mode (issue 20): 4000×3000 JPEGs with EXIF orientation, half rotated (bench/_photos.py; kept
in ``--photo-dir`` so a run of the code before a change imports the same files). It reports
images/s, the process's resident memory sampled during the import (peak in the first and the
second half: flat means it does not grow with the images), and the 64 px training cache filled
from the stored files (labeling.ml.cache, one process) against a full decode + resize of the
same files. Targets: import ≥ 2× the rate before issue 20; cache fill ≥ 5× the full decode.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, int_options, photo_options, write_result

    # --threads: images the command decodes at once (0: its default, the cores up to 4; 1: as before issue 20)
    args = photo_options(int_options(images=2000, size=128, threads=0), "import").parse_args()

    work = django_setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from annotator.demo.scenes import generate
    from annotator.models import Image
    from annotator.services.projects import project_create

    if args.photos:
        photos(args, work)
        return
    folder = work / "pngs"
    folder.mkdir()
    for scene in generate(args.images, seed=7, size=(args.size, args.size)):
        buffer = io.BytesIO()
        scene.image.save(buffer, "PNG")
        (folder / f"scene-{scene.index:05d}.png").write_bytes(buffer.getvalue())

    user, _ = get_user_model().objects.get_or_create(username="bench")
    project = project_create(name=f"bench-import-{time.time_ns()}", user=user)
    start = time.perf_counter()
    call_command("import_images", str(project.id), str(folder), *_threads(args), "--no-progress", stdout=io.StringIO())
    seconds = time.perf_counter() - start
    imported = Image.objects.filter(project=project).count()
    assert imported == args.images, f"only {imported} of {args.images} imported"
    rate = imported / seconds
    print(
        f"import_images: {imported} {args.size}×{args.size} PNGs in {seconds:.2f} s = {rate:.0f} images/s "
        f"({connection.vendor}); target ≥ 250/s; Label Studio 1.23.2 ≈ 51/s"
    )
    write_result(
        args.name or f"import_throughput_{connection.vendor}",
        {
            "images": imported,
            "size": args.size,
            "seconds": round(seconds, 3),
            "images_per_s": round(rate, 1),
            "threads": args.threads or "default (cores, at most 4)",
            "database": connection.vendor,
            "target_images_per_s": 250,
            "label_studio_images_per_s": 51.4,
            "speedup_vs_label_studio": round(rate / 51.4, 2),
        },
    )


def photos(args, work: Path) -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    from django.contrib.auth import get_user_model
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from django.db import connection

    from annotator.models import Image
    from annotator.services.projects import project_create
    from bench._photos import write_photos
    from bench._util import machine_load, write_result

    folder = args.photo_dir or work / "photos"
    paths = sorted(folder.glob("photo-*.jpg"))[: args.photos]
    if len(paths) < args.photos:
        paths = write_photos(folder, args.photos)
    source_mb = sum(p.stat().st_size for p in paths) / 1e6
    user, _ = get_user_model().objects.get_or_create(username="bench")
    project = project_create(name=f"bench-photos-{time.time_ns()}", user=user)
    load_before = os.getloadavg()[0]
    with RssSampler() as rss:
        start = time.perf_counter()
        call_command(
            "import_images", str(project.id), str(folder), *_threads(args), "--no-progress", stdout=io.StringIO()
        )
        seconds = time.perf_counter() - start
    imported = Image.objects.filter(project=project).count()
    assert imported == len(paths), f"only {imported} of {len(paths)} imported"
    rate = imported / seconds
    print(
        f"import_images: {imported} 4000×3000 JPEGs ({source_mb:.0f} MB, half EXIF-rotated) in {seconds:.1f} s "
        f"= {rate:.2f} images/s; RSS peak {rss.peaks_mb()} MB (first half, second half)"
    )
    from labeling.data import cache_source

    rows = list(
        Image.objects.filter(project=project).order_by("id").values_list("file", "thumbnail", "width", "height")
    )
    stored = [Path(default_storage.path(file)) for file, *_ in rows]
    # What the worker decodes for its 64 px cache (labeling.data.cache_source: the import's thumbnail of a photo).
    sources = [
        Path(default_storage.path(cache_source(file=f, thumbnail=t, width=w, height=h, resolution=64)))
        for f, t, w, h in rows
    ]
    cache = cache_fill(stored, sources, work)
    print(
        f"64 px cache fill: {cache['cache_images_per_s']} images/s vs full decode + resize "
        f"{cache['full_decode_images_per_s']} images/s = {cache['speedup']}x (target ≥ 5x)"
    )
    write_result(
        args.name or f"import_photos_{connection.vendor}",
        {
            "mode": "photos",
            "threads": args.threads or "default (cores, at most 4)",
            "images": imported,
            "width": 4000,
            "height": 3000,
            "rotated_fraction": 0.5,
            "source_mb": round(source_mb, 1),
            "seconds": round(seconds, 2),
            "images_per_s": round(rate, 3),
            "rss_peak_mb_first_half_second_half": rss.peaks_mb(),
            "database": connection.vendor,
            **cache,
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "load_average": machine_load(load_start),
            "note": (
                "fewer than the issue's 1,000 photos for time; compare only with a run of the same size and load."
            ),
        },
    )


def _threads(args) -> list[str]:
    return ["--threads", str(args.threads)] if args.threads else []


def cache_fill(paths: list[Path], sources: list[Path], work: Path) -> dict:
    """The 64 px training cache as the worker fills it (labeling.ml.cache, one process, from ``sources``:
    what labeling.data.cache_source picks) vs a full decode + resize of the stored originals ``paths``."""
    import numpy as np
    from PIL import Image as PILImage, ImageOps

    from labeling.ml.cache import ImageCache

    start = time.perf_counter()
    ImageCache(work / "cache", 64).add(np.arange(len(sources)), [str(p) for p in sources], workers=1)
    cached = time.perf_counter() - start
    sample = paths[: max(1, min(len(paths), 20))]  # the slow path on a sample is enough for a rate
    start = time.perf_counter()
    for path in sample:
        with PILImage.open(path) as image:
            image.load()
            upright = ImageOps.exif_transpose(image).convert("RGB")
            np.asarray(upright.resize((64, 64), PILImage.Resampling.BICUBIC, reducing_gap=3.0))
    full = time.perf_counter() - start
    return {
        "cache_images_per_s": round(len(paths) / cached, 2),
        "full_decode_images_per_s": round(len(sample) / full, 2),
        "full_decode_sample": len(sample),
        "speedup": round((len(paths) / cached) / (len(sample) / full), 2),
        "cache_read_thumbnails": sum(source != path for source, path in zip(sources, paths)),
    }


class RssSampler:
    """This process's resident memory every 50 ms while in the block."""

    def __enter__(self):
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.05):
            with open("/proc/self/statm") as f:
                self.samples.append((time.perf_counter(), int(f.read().split()[1]) * page))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peaks_mb(self) -> list[float]:
        if len(self.samples) < 2:
            return []
        middle = (self.samples[0][0] + self.samples[-1][0]) / 2
        halves = ([b for t, b in self.samples if t <= middle], [b for t, b in self.samples if t > middle])
        return [round(max(h) / 1e6, 1) for h in halves if h]


if __name__ == "__main__":
    main()
