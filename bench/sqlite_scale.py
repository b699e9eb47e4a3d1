"""The embedded SQLite default at 2,000 and 50,000 images: the requests whose cost grew with the
project (issue 20, part 3), through Django's full stack.

    python -m bench.sqlite_scale [--sizes 2000 50000] [--repeat 7] [--name sqlite_scale] [--before DIR]

With ``--before DIR`` (the code before a change, with this file copied in) both trees are measured
in the same run, alternately, so that the machine's load hits both alike.

Each size gets a fresh embedded database (a new process, migrated), filled the way a live
database is filled and, like a live embedded database, never ANALYZEd by the benchmark: whatever
statistics SQLite has come from the product itself (migrate, PRAGMA optimize). Half the images are
submitted, three boxes per image over ten labels, a tag on each submitted image. Timed (median of
``--repeat``, after one warm-up):

- ``GET /api/projects/{id}/images/?label=<id>`` (the image list filtered by a human label);
- ``GET /api/projects/{id}/dashboard/`` (the dashboard JSON), with each of its queries timed, so
  the one that grows with the project is named in the JSON.

Target: each request's 50k / 2k ratio close to 1 (flat). The machine is shared; the load average
during the run is written next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

LABELS = 10
BOXES_PER_IMAGE = 3


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 50_000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--name", default="sqlite_scale", help="bench/results/<name>.json")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of the code before the change (e.g. `git archive <commit>` unpacked, with "
        "this file copied in): measured alternately with this tree, size by size, same run",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size here
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    if args.one:
        print("RESULT " + json.dumps(measure(args.one, args.repeat)))
        return
    trees = {"after": root, **({"before": args.before.resolve()} if args.before else {})}
    figures: dict[str, dict] = {name: {} for name in trees}
    for size in args.sizes:
        for name, tree in reversed(trees.items()):  # before, then after, at each size
            figures[name][size] = _measure_in(tree, size, args.repeat)
            print(
                f"{name:>6} {size:>7} images: {json.dumps(figures[name][size]['median_ms'])}  load "
                f"{figures[name][size]['load_average_1m']}  slowest dashboard queries: "
                f"{figures[name][size]['dashboard_slowest_queries'][:2]}"
            )
    ratios = {}
    for name, by_size in figures.items():
        small, large = by_size[min(by_size)], by_size[max(by_size)]
        ratios[name] = {k: round(large["median_ms"][k] / small["median_ms"][k], 2) for k in small["median_ms"]}
        print(f"{name}: ratio {max(by_size)}/{min(by_size)}: {ratios[name]}")
    from bench._util import machine_load, write_result

    write_result(
        args.name,
        {
            "database": "sqlite (embedded default)",
            "sizes": args.sizes,
            "labels": LABELS,
            "boxes_per_image": BOXES_PER_IMAGE,
            "repeat": args.repeat,
            "by_size": {name: {str(k): v for k, v in by_size.items()} for name, by_size in figures.items()},
            "ratio_largest_to_smallest": ratios,
            "load_average": machine_load(load_start),  # and the 1-minute one per size in by_size
            "note": (
                "the ratios are the point. No ANALYZE by the benchmark: statistics only from what the "
                "product runs itself."
            ),
        },
    )


def _measure_in(tree: Path, size: int, repeat: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TWINLABEL_VAR_DIR")}
    out = subprocess.run(
        [sys.executable, "-m", "bench.sqlite_scale", "--one", str(size), "--repeat", str(repeat)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.split("RESULT ", 1)[1])


def measure(size: int, repeat: int) -> dict:
    from bench._util import django_setup, median_get_ms

    django_setup(ALLOWED_HOSTS="testserver")
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    began = time.perf_counter()
    project, owner, label_id = _build(size)
    build_s = time.perf_counter() - began
    connection.close()  # as a web request ends: the product's own close-time work runs here
    client = Client()
    client.force_login(owner)
    urls = {
        "images_by_label": f"/api/projects/{project.id}/images/?label={label_id}",
        "dashboard_json": f"/api/projects/{project.id}/dashboard/",
    }
    medians = {name: median_get_ms(client, url, repeat) for name, url in urls.items()}
    with CaptureQueriesContext(connection) as queries:
        client.get(urls["dashboard_json"])
    slowest = sorted(
        ({"ms": round(float(q["time"]) * 1000, 2), "sql": q["sql"][:160]} for q in queries), key=lambda q: -q["ms"]
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        has_stats = cursor.fetchone()[0] == 1
    return {
        "images": size,
        "boxes": size * BOXES_PER_IMAGE,
        "build_s": round(build_s, 1),
        "median_ms": medians,
        "dashboard_queries": len(queries),
        "dashboard_slowest_queries": slowest[:5],
        "sqlite_stat1_present": has_stats,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _build(n_images: int):
    from tests.factories import image_row

    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from annotator.services.projects import project_create
    from annotator.services.status_counts import label_box_counts_recount, status_counts_recount
    from annotator.models import Box, Image, ImageTag, LabelClass

    owner = get_user_model().objects.create_user(f"bench-{time.time_ns()}", password="x")
    project = project_create(name="bench-sqlite-scale", user=owner, labels=[f"label{i}" for i in range(LABELS)])
    labels = list(LabelClass.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    now = timezone.now()
    Image.objects.bulk_create(
        [
            image_row(
                project,
                i,
                box_count=BOXES_PER_IMAGE,
                human_tag_count=int(i % 2 == 0),
                **(
                    {
                        "status": "submitted",
                        "submitted_by": owner,
                        "work_seconds": 3 + i % 60,
                        "submitted_at": now - timedelta(days=(i // 2) % 30, seconds=i),
                    }
                    if i % 2 == 0
                    else {}
                ),
            )
            for i in range(n_images)
        ],
        batch_size=2000,
    )
    ids = list(Image.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    Box.objects.bulk_create(
        [
            Box(image_id=image_id, label_id=labels[(n + b) % LABELS], x=1, y=1, w=10, h=10, author=owner)
            for n, image_id in enumerate(ids)
            for b in range(BOXES_PER_IMAGE)
        ],
        batch_size=5000,
    )
    ImageTag.objects.bulk_create(
        [
            ImageTag(image_id=image_id, label_id=labels[n % LABELS], author=owner)
            for n, image_id in enumerate(ids)
            if n % 2 == 0
        ],
        batch_size=5000,
    )
    # Rows inserted behind the services' back: the counters are rebuilt as the recount command does.
    status_counts_recount(project_id=project.id)
    label_box_counts_recount(project_id=project.id)
    return project, owner, labels[3]


if __name__ == "__main__":
    main()
