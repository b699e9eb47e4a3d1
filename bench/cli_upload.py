"""The CLI's upload: 2,000 generated 128x128 PNGs from a folder to the real web server (bin/web), through
twinlabel_client (client/) with parallel requests, then the same folder again (the resume: nothing sent).
Compare with bench/upload_throughput.py, the browser path (one request after another).

    python -m bench.cli_upload [--images 2000] [--batch 20] [--workers 4]

A fresh embedded SQLite database under a temporary folder (or DATABASE_URL when set).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    load_start = os.getloadavg()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "client"))
    from bench._util import django_setup, int_options, machine_load, write_result

    args = int_options(images=2000, batch=20, workers=4, size=128).parse_args()
    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from annotator.demo.scenes import generate
    from annotator.models import Image
    from annotator.services.projects import project_create
    from tests import procs
    from twinlabel_client import Client

    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
    token = Token.objects.create(user=user).key
    project = project_create(name=f"bench-cli-{time.time_ns()}", user=user)
    folder = Path(os.environ["MEDIA_ROOT"]).parent / "cli-photos"
    folder.mkdir(parents=True)
    for scene in generate(args.images, seed=11, size=(args.size, args.size)):
        scene.image.save(folder / f"scene-{scene.index:05d}.png", "PNG")
    connection.close()
    env = procs.service_env(MEDIA_ROOT=os.environ["MEDIA_ROOT"], WEB_ACCESS_LOG="/dev/null")
    if not os.environ.get("DATABASE_URL"):
        env.pop("DATABASE_URL")
    with procs.web(env) as (_, url):
        client = Client(url, token)
        start = time.perf_counter()
        report = client.upload(project.id, folder, batch=args.batch, workers=args.workers)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        again = client.upload(project.id, folder, batch=args.batch, workers=args.workers)
        resume_s = time.perf_counter() - start
    assert report["imported"] == args.images == Image.objects.filter(project=project).count(), report
    assert again["skipped"] == args.images
    rate = args.images / seconds
    figures = {
        "images": args.images,
        "batch": args.batch,
        "workers": args.workers,
        "seconds": round(seconds, 2),
        "images_per_s": round(rate, 1),
        "resume_seconds": round(resume_s, 2),
        "database": connection.vendor,
        "web_workers": 2,
        "load": machine_load(load_start),
    }
    print(
        f"CLI upload: {args.images} {args.size}x{args.size} PNGs in {seconds:.2f} s = {rate:.1f} images/s "
        f"({args.workers} parallel requests of {args.batch}, {connection.vendor}); re-run (resume) {resume_s:.2f} s; "
        f"load {figures['load']}"
    )
    write_result(f"cli_upload_{connection.vendor}", figures)


if __name__ == "__main__":
    main()
