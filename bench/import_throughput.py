"""Import throughput of `manage.py import_images` on generated 128×128 PNGs.

    python -m bench.import_throughput [--images 2000] [--size 128]

Runs against a fresh embedded database (SQLite under a temporary var/) unless DATABASE_URL is set,
in which case that database is used (a project named after the run is created in it). Reference:
Label Studio 1.23.2 took 38.9 s for 2,000 such PNGs by upload on this kind of machine (≈51 images/s).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, write_result

    work = django_setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from annotator.demo.scenes import generate
    from annotator.models import Image
    from annotator.services import project_create

    folder = work / "pngs"
    folder.mkdir()
    for scene in generate(args.images, seed=7, size=(args.size, args.size)):
        buffer = io.BytesIO()
        scene.image.save(buffer, "PNG")
        (folder / f"scene-{scene.index:05d}.png").write_bytes(buffer.getvalue())

    user, _ = get_user_model().objects.get_or_create(username="bench")
    project = project_create(name=f"bench-import-{time.time_ns()}", user=user)
    start = time.perf_counter()
    call_command("import_images", str(project.id), str(folder), "--no-progress", stdout=io.StringIO())
    seconds = time.perf_counter() - start
    imported = Image.objects.filter(project=project).count()
    assert imported == args.images, f"only {imported} of {args.images} imported"
    rate = imported / seconds
    print(f"import_images: {imported} {args.size}×{args.size} PNGs in {seconds:.2f} s = {rate:.0f} images/s "
          f"({connection.vendor}); target ≥ 250/s; Label Studio 1.23.2 ≈ 51/s")
    write_result(f"import_throughput_{connection.vendor}", {
        "images": imported, "size": args.size, "seconds": round(seconds, 3), "images_per_s": round(rate, 1),
        "database": connection.vendor, "target_images_per_s": 250, "label_studio_images_per_s": 51.4,
        "speedup_vs_label_studio": round(rate / 51.4, 2),
    })


if __name__ == "__main__":
    main()
