"""The upload bomb of issue 14 (item 8): one POST of 40 copies of a ~3 KB WebP that decodes to
10000×10000 pixels, to the real web server (bin/web, gunicorn), measuring what it costs the web
worker that handles it: CPU seconds (utime + stime of every worker process), the peak resident
memory above the worker's resident size before the request (VmHWM after resetting it through
/proc/<pid>/clear_refs), and the wall time. Target: < 300 MB and < 5 s, or refused at once.

    python -m bench.upload_bomb [--copies 40] [--side 10000] [--decode-max-mb N] [--name upload_bomb]

Uses a fresh embedded SQLite database under a temporary folder. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import sys
import time
import urllib.error
from pathlib import Path

from bench._http import Session, multipart

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=40)
    parser.add_argument("--side", type=int, default=10_000)
    parser.add_argument(
        "--decode-max-mb",
        type=int,
        default=None,
        help="IMAGE_DECODE_MAX_MB for the server (default: the setting's default)",
    )
    parser.add_argument("--name", default="upload_bomb")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench._util import django_setup, machine_load, write_result

    extra = {"IMAGE_DECODE_MAX_MB": str(args.decode_max_mb)} if args.decode_max_mb else {}
    django_setup(**extra)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from PIL import Image as PILImage

    from annotator.models import Image
    from annotator.services.projects import project_create
    from tests import procs

    password = secrets.token_urlsafe(12)
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}", password=password)
    project = project_create(name=f"bench-bomb-{time.time_ns()}", user=user)
    buffer = io.BytesIO()
    PILImage.new("RGB", (args.side, args.side), (10, 20, 30)).save(buffer, "WEBP", lossless=True)
    webp = buffer.getvalue()
    connection.close()

    env = procs.service_env(MEDIA_ROOT=os.environ["MEDIA_ROOT"], WEB_ACCESS_LOG="/dev/null", **extra)
    env.pop("DATABASE_URL", None)  # the embedded default, under the same TWINLABEL_VAR_DIR
    load_before = os.getloadavg()
    with procs.web(env) as (service, url):
        session = Session(url, user.username, password)
        workers = _children(service.process.pid)
        session.request("GET", f"/api/projects/{project.id}/")  # warm every import the upload path needs
        before = {pid: (_cpu(pid), _rss_kb(pid)) for pid in workers}
        for pid in workers:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        status, answer, seconds = _post(session, project.id, [(f"copy-{i:02d}.webp", webp) for i in range(args.copies)])
        after = {pid: (_cpu(pid), _hwm_kb(pid)) for pid in workers}
    cpu = sum(after[p][0] - before[p][0] for p in workers)
    peak_mb = max((after[p][1] - before[p][1]) / 1024 for p in workers)
    stored = Image.objects.filter(project=project).count()
    summary = {k: len(v) for k, v in answer.items() if isinstance(v, list)}
    print(
        f"{args.copies} × {len(webp)} B WebP of {args.side}² px (IMAGE_DECODE_MAX_MB={settings.IMAGE_DECODE_MAX_MB:,}): "
        f"HTTP {status} in {seconds:.2f} s; web worker CPU {cpu:.2f} s; peak memory +{peak_mb:.0f} MB; "
        f"stored {stored}; answer {summary or answer}"
    )
    met = (peak_mb < 300 and seconds < 5) or status >= 400 or (summary.get("rejected") == args.copies)
    write_result(
        args.name,
        {
            "copies": args.copies,
            "file_bytes": len(webp),
            "request_bytes": len(webp) * args.copies,
            "side_px": args.side,
            "image_max_pixels": settings.IMAGE_MAX_PIXELS,
            "image_decode_max_mb": settings.IMAGE_DECODE_MAX_MB,
            "image_decodes_per_process": settings.IMAGE_DECODES_PER_PROCESS,
            "http_status": status,
            "answer_counts": summary,
            "rejected_reasons": sorted({r["reason"] for r in answer.get("rejected", [])}),
            "images_stored": stored,
            "wall_s": round(seconds, 3),
            "web_worker_cpu_s": round(cpu, 3),
            "web_worker_peak_extra_mb": round(peak_mb, 1),
            "target": "peak < 300 MB and < 5 s, or refused at once",
            "target_met": bool(met),
            "issue_before": {"web_worker_cpu_s": 62, "web_worker_peak_extra_mb": 1580},
            "load_average": machine_load(load_before),
            "server": "bin/web (gunicorn gthread, 2 workers × 4 threads), embedded SQLite, filesystem storage",
        },
    )


def _post(session: Session, project_id: int, files: list[tuple[str, bytes]]) -> tuple[int, dict, float]:
    body, content_type = multipart(files, file_type="image/webp")
    start = time.perf_counter()
    try:
        status, raw = session.request("POST", f"/api/projects/{project_id}/images/", body, content_type)
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw), time.perf_counter() - start


def _children(pid: int) -> list[int]:
    """gunicorn's worker processes: the children of the master (bin/web execs into it)."""
    for _ in range(100):
        kids = [int(k) for t in Path(f"/proc/{pid}/task").iterdir() for k in (t / "children").read_text().split()]
        if kids:
            return kids
        time.sleep(0.1)
    raise RuntimeError("no gunicorn workers found")


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _rss_kb(pid: int) -> int:
    return _status_kb(pid, "VmRSS")


def _hwm_kb(pid: int) -> int:
    return _status_kb(pid, "VmHWM")


if __name__ == "__main__":
    main()
