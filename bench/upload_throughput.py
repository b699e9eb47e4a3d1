"""Browser-path import: 2,000 generated 128×128 PNGs POSTed over HTTP to the real web server
(bin/web, gunicorn) in batches of 20, one request after another, as the project page's upload does.

    python -m bench.upload_throughput [--images 2000] [--batch 20]
    python -m bench.upload_throughput --photos 100 [--photo-dir DIR] [--batch 4]

Photo mode (issue 20): 4000×3000 JPEGs with EXIF orientation, half rotated (bench/_photos.py),
instead of the PNGs; the web server's resident memory is sampled during the upload.

Label Studio 1.23.2 took 38.9 s for 2,000 such PNGs by upload on this kind of machine (≈51 images/s).
Uses a fresh embedded SQLite database under a temporary folder (or DATABASE_URL when set).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import sys
import time
from pathlib import Path

from bench._http import Session

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    sys.path.insert(0, str(ROOT))
    from bench._util import django_setup, int_options, machine_load, photo_options, write_result

    args = photo_options(int_options(images=2000, batch=20, size=128), "upload").parse_args()

    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotator.demo.scenes import generate
    from annotator.models import Image
    from annotator.services.projects import project_create
    from tests import procs

    password = secrets.token_urlsafe(12)
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}", password=password)
    project = project_create(name=f"bench-upload-{time.time_ns()}", user=user)
    files = []
    if args.photos:
        from bench._photos import write_photos

        folder = args.photo_dir or Path(os.environ["MEDIA_ROOT"]).parent / "photos"
        paths = sorted(folder.glob("photo-*.jpg"))[: args.photos]
        if len(paths) < args.photos:
            paths = write_photos(folder, args.photos)
        files = [(p.name, p.read_bytes()) for p in paths]
        args.images = len(files)
    for scene in generate(0 if args.photos else args.images, seed=11, size=(args.size, args.size)):
        buffer = io.BytesIO()
        scene.image.save(buffer, "PNG")
        files.append((f"scene-{scene.index:05d}.png", buffer.getvalue()))
    connection.close()

    env = procs.service_env(MEDIA_ROOT=os.environ["MEDIA_ROOT"], WEB_ACCESS_LOG="/dev/null")
    if not os.environ.get("DATABASE_URL"):
        env.pop("DATABASE_URL")  # the embedded default, under the same TWINLABEL_VAR_DIR
    load_before = os.getloadavg()[0]
    with procs.web(env) as (process, url):
        session = Session(url, user.username, password)
        start = time.perf_counter()
        imported, rss = 0, []
        for first in range(0, len(files), args.batch):
            imported += _upload(session, f"/api/projects/{project.id}/images/", files[first : first + args.batch])
            rss.append(_tree_rss_mb(process.process.pid))
        seconds = time.perf_counter() - start
    assert imported == args.images == Image.objects.filter(project=project).count()
    rate = imported / seconds
    what = "4000×3000 JPEGs (half EXIF-rotated)" if args.photos else f"{args.size}×{args.size} PNGs"
    print(
        f"upload over HTTP: {imported} {what} in {seconds:.2f} s = {rate:.2f} images/s "
        f"({connection.vendor}, batches of {args.batch}); web server RSS after each batch {rss} MB"
    )
    if args.photos:
        half = len(rss) // 2
        write_result(
            args.name or f"upload_photos_{connection.vendor}",
            {
                "mode": "photos",
                "images": imported,
                "batch": args.batch,
                "seconds": round(seconds, 2),
                "images_per_s": round(rate, 3),
                "database": connection.vendor,
                "web_rss_mb_max_first_half_second_half": [max(rss[:half] or rss), max(rss[half:] or rss)],
                "load_average_1m_before": round(load_before, 2),
                "load_average_1m_after": round(os.getloadavg()[0], 2),
                "load_average": machine_load(load_start),
                "note": "fewer than 1,000 photos.",
            },
        )
        return
    write_result(
        args.name or f"upload_throughput_{connection.vendor}",
        {
            "images": imported,
            "batch": args.batch,
            "seconds": round(seconds, 3),
            "images_per_s": round(rate, 1),
            "database": connection.vendor,
            "label_studio_images_per_s": 51.4,
            "speedup_vs_label_studio": round(rate / 51.4, 2),
        },
    )


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of the web server: gunicorn's master and its workers."""
    total, pids = 0, [pid]
    while pids:
        p = pids.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{p}/task/{p}/children") as f:
                pids.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return round(total / 1e6, 1)


def _upload(session: Session, path: str, files: list[tuple[str, bytes]]) -> int:
    boundary = secrets.token_hex(16)
    parts = []
    for name, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: {'image/jpeg' if name.endswith('.jpg') else 'image/png'}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    _, raw = session.request("POST", path, body, f"multipart/form-data; boundary={boundary}")
    return len(json.loads(raw)["imported"])


if __name__ == "__main__":
    main()
