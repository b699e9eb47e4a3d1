"""Scale: a project of up to a million image rows and three boxes per image, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/twinlabel_scale python -m bench.scale \
        [--sizes 10000 100000 1000000] [--repeat 15]

Rows are what matter: every row points at one small shared file name (nothing reads it). Rows go
in with COPY (psycopg3 ``cursor.copy``), then at each size the script times, as medians:

- the queue's next-image request (sequential, random, and by the probe: uncertain, label);
- the image list (the grid page, through Django's full stack) per status filter, first page and a
  deep keyset page near the end;
- save + submit of one image (three boxes);
- the project page (status counters) and the counters alone;
- writing suggestions for every image x every label, block by block as the shard tasks do (COPY);
- the dashboard JSON and the COCO export (bench/scale_hooks/dashboard.py and coco.py; issue 20's
  targets at 1M images / 3M boxes: dashboard < 500 ms, export >= 20,000 images/s, flat memory).

Targets (issue 9): each request within 2x of its figure at 10,000 images; writes at a steady rate.
The database must be one the script may fill (it creates its own project; nothing is deleted
but that project's suggestion rows).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from pathlib import Path

LABELS = ["person", "car", "dog", "cat", "bicycle", "tree"]
NOTE = "ratios matter more than absolute values (see load_average for what else ran)."


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--boxes", type=int, default=3, help="boxes per image")
    parser.add_argument("--block", type=int, default=50_000, help="images per suggestion shard")
    parser.add_argument(
        "--skip-suggestions",
        action="store_true",
        help="keep the suggestions a previous run wrote (a rerun of the requests only)",
    )
    parser.add_argument("--name", default="scale_postgresql", help="bench/results/<name>.json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, machine_load, write_result

    django_setup(ALLOWED_HOSTS="testserver")
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from annotator.services.projects import project_create

    if connection.vendor != "postgresql":
        raise SystemExit("bench.scale needs PostgreSQL: set DATABASE_URL")
    from annotator.models import Project

    user = get_user_model().objects.create_user(f"scale-{time.time_ns()}", password="x")
    client = Client()
    client.force_login(user)
    figures, loads = {}, {}
    for size in sorted(args.sizes):
        # One project per size; a rerun on the same database measures the projects it built before.
        project = Project.objects.filter(name=f"scale-{size}").first()
        if project is not None and project.images.count() == size:
            project.memberships.create(user=user, role="admin")
            loads[size] = {"reused": True}
        else:
            project = project_create(name=f"scale-{size}", user=user, labels=LABELS)
            loads[size] = _grow(project, user, 0, size, args.boxes)
        print(f"{size:>9} images: {loads[size]}")
        figures[size] = measure(project, user, client, args)
        for name, value in figures[size].items():
            print(f"           {name}: {value}")
    small, large = figures[min(figures)], figures[max(figures)]
    # Requests and the write rate; the write's total rows and seconds grow with the project by nature.
    ratios = {
        name: round(large[name] / small[name], 2)
        for name in small
        if _number(small.get(name))
        and _number(large.get(name))
        and name not in ("suggestions_rows", "suggestions_seconds")
    }
    print(f"ratio {max(figures)}/{min(figures)}: {ratios} (target <= 2; suggestion rate: steady)")
    write_result(
        args.name,
        {
            "database": connection.vendor,
            "note": NOTE,
            "load_average": machine_load(load_start),
            "sizes": sorted(args.sizes),
            "boxes_per_image": args.boxes,
            "labels": len(LABELS),
            "load": {str(k): v for k, v in loads.items()},
            "median_ms": {str(k): v for k, v in figures.items()},
            "ratio_largest_to_smallest": ratios,
            "target_ratio": 2.0,
            "hooks": {"dashboard": _hook_state("dashboard"), "coco_export": _hook_state("coco")},
        },
    )


# ---------------------------------------------------------------------------------------------
# Loading rows


def _grow(project, user, start: int, stop: int, boxes: int) -> dict:
    """Image rows [start, stop) and their boxes by COPY; counters recounted once; ANALYZE."""
    from django.db import connection

    from annotator.models import Box, Image
    from annotator.services.status_counts import label_box_counts_recount, status_counts_recount

    labels = list(project.labels.order_by("id").values_list("id", flat=True))
    began = time.perf_counter()
    image_cols = [
        "project_id",
        "file",
        "thumbnail",
        "original_name",
        "width",
        "height",
        "size_bytes",
        "sha256",
        "status",
        "submitted_by_id",
        "submitted_at",
        "version",
        "created_at",
        "review_status",
        "box_count",
        "human_tag_count",
    ]  # Django's defaults are not the database's: COPY names every NOT NULL
    with connection.cursor() as cursor:
        with cursor.cursor.copy(_copy_sql(Image, image_cols)) as copy:
            for i in range(start, stop):
                status, by, at = _status(i, user.id)
                copy.write_row(
                    (
                        project.id,
                        "bench/shared.png",
                        "bench/shared.jpg",
                        f"{i}.png",
                        640,
                        480,
                        1000,
                        f"{project.id}-{i:058d}",
                        status,
                        by,
                        at,
                        1,
                        "2026-01-01T00:00:00Z",
                        "none",
                        boxes,
                        0,
                    )
                )
        cursor.execute(
            "SELECT id FROM annotator_image WHERE project_id = %s AND sha256 = %s",
            [project.id, f"{project.id}-{start:058d}"],
        )
        first_id = cursor.fetchone()[0]
        box_cols = ["image_id", "label_id", "x", "y", "w", "h", "author_id", "source", "created_at", "attributes"]
        with cursor.cursor.copy(_copy_sql(Box, box_cols)) as copy:
            for n in range(stop - start):
                for b in range(boxes):
                    copy.write_row(
                        (
                            first_id + n,
                            labels[(n + b) % len(labels)],
                            10.0 * b,
                            20.0,
                            100.0,
                            80.0,
                            user.id,
                            "human",
                            "2026-01-01T00:00:00Z",
                            '{"occluded": true}' if (n + b) % 50 == 0 else "{}",  # 2 % carry an attribute
                        )
                    )
        cursor.execute("ANALYZE annotator_image; ANALYZE annotator_box")
    status_counts_recount(project_id=project.id)
    label_box_counts_recount(project_id=project.id)  # boxes by COPY: the dashboard's counters too
    seconds = time.perf_counter() - began
    rows = (stop - start) * (1 + boxes)
    return {"seconds": round(seconds, 1), "rows": rows, "rows_per_s": round(rows / seconds)}


def _status(i: int, user_id: int):
    if i % 10 == 0:
        return "submitted", user_id, "2026-01-01T00:00:00Z"
    if i % 20 == 1:
        return "skipped", None, None
    return "unlabeled", None, None


def _copy_sql(model, columns: list[str]) -> str:
    return f'COPY "{model._meta.db_table}" ({", ".join(columns)}) FROM STDIN'


# ---------------------------------------------------------------------------------------------
# Measuring


def measure(project, user, client, args) -> dict:
    from annotator.services.queue import queue_next
    from annotator.models import Image
    from annotator.selectors import image_page, project_status_counts

    from twinlabel.web.dashboard import figures_refresh_due

    out = {}
    # What a running worker's sweep has done by now: a big project's dashboard figures are stored
    # (the project page and the dashboard read them). Timed: the worker pays it, once per change.
    start = time.perf_counter()
    out["sweep_dashboard_figures_ms"] = round((time.perf_counter() - start) * 1000, 1) if figures_refresh_due() else 0.0
    held = {"id": queue_next(project=project, user=user).id}

    def next_image(order: str) -> None:
        # Let go of the image held so far (as the page does when the order changes): a held image
        # would be handed back at once, and the free-image search is what this measures.
        image = queue_next(project=project, user=user, order=order, release=[held["id"]])
        held["id"] = image.id

    for order in ("sequential", "random"):
        out[f"queue_next_{order}"] = _median(lambda o=order: next_image(o), args.repeat)
    grid = f"/projects/{project.id}/images/"
    for status in ("", "unlabeled", "submitted", "skipped", "in_progress"):
        images = Image.objects.filter(project=project, **({"status": status} if status else {}))
        deep = images.order_by("-id").values_list("id", flat=True)[200:201]
        key = status or "all"
        out[f"grid_{key}_first"] = _median_get(client, f"{grid}?status={status}", args.repeat)
        # The selector alone (the SQL and the rows), without the page around it.
        out[f"image_page_{key}_first"] = _median(
            lambda s=status: image_page(project_id=project.id, status=s or None), args.repeat
        )
        if deep:
            out[f"grid_{key}_deep"] = _median_get(client, f"{grid}?status={status}&after={deep[0]}", args.repeat)
            out[f"image_page_{key}_deep"] = _median(
                lambda s=status, d=deep[0]: image_page(project_id=project.id, status=s or None, after=d), args.repeat
            )
    out["save_submit"] = _median(lambda: _save_submit(project, user, held), args.repeat)
    out["project_page"] = _median_get(client, f"/projects/{project.id}/", args.repeat)
    out["status_counts"] = _median(lambda: project_status_counts(project_id=project.id), args.repeat)
    if not args.skip_suggestions:
        out.update(_suggestions(project, args))
    out["queue_next_uncertain"] = _median(lambda: next_image("uncertain"), args.repeat)
    label = project.labels.order_by("id").first()
    out["queue_next_label"] = _median(lambda: next_image(f"label:{label.id}"), args.repeat)
    for name in ("dashboard", "coco"):
        hook = _hook(name)
        if hook is not None:
            out.update(hook(project=project, user=user, repeat=args.repeat))
    return out


def _save_submit(project, user, held: dict) -> None:
    from annotator.services.annotations import annotation_save, image_submit
    from annotator.services.queue import queue_next
    from annotator.services.annotations import BoxIn

    image = queue_next(project=project, user=user, release=[held["id"]])
    held["id"] = image.id
    label = project.labels.order_by("id").values_list("id", flat=True).first()
    boxes = [BoxIn(label_id=label, x=10.0 * b, y=10.0, w=50.0, h=40.0) for b in range(3)]
    annotation_save(image=image, user=user, version=image.version, boxes=boxes, tag_label_ids=[label])
    image.refresh_from_db(fields=["version", "status"])
    image_submit(image=image, user=user, version=image.version)


def _suggestions(project, args) -> dict:
    """Suggestions for every image x label, written block by block as the shard tasks do."""
    import numpy as np
    from django.db import transaction

    from annotator.models import Image
    from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun
    from labeling.suggesting import write_suggestions

    old = TrainingRun.objects.filter(project=project, kind=RunKind.PROBE)
    Suggestion.objects.filter(run__in=old).delete()
    run = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
    label_ids = np.array(project.labels.order_by("id").values_list("id", flat=True), dtype=np.int64)
    rng = np.random.default_rng(0)
    thresholds, trained = np.full(len(label_ids), 0.5), np.ones(len(label_ids), bool)
    rows, began = 0, time.perf_counter()
    ids = Image.objects.filter(project=project).order_by("id").values_list("id", flat=True)
    for block in _chunks(ids.iterator(chunk_size=args.block), args.block):
        pool = np.array(block, dtype=np.int64)
        probs = rng.random((len(pool), len(label_ids)), dtype=np.float32)
        with transaction.atomic():
            rows += write_suggestions(
                run_id=run.id,
                pool=pool,
                label_ids=label_ids,
                probs=probs,
                thresholds=thresholds,
                trained=trained,
                scores=rng.random(len(pool)),
            )
    seconds = time.perf_counter() - began
    ProjectModelState.objects.update_or_create(project=project, defaults={"probe_run": run})
    return {
        "suggestions_rows": rows,
        "suggestions_seconds": round(seconds, 1),
        "suggestions_rows_per_s": round(rows / seconds),
    }


def _chunks(iterator, n: int):
    chunk = []
    for item in iterator:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _median(fn, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def _median_get(client, url: str, repeat: int) -> float:
    def get():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)

    return _median(get, repeat)


# ---------------------------------------------------------------------------------------------
# Hooks for what other branches bring: the dashboard (issue 6) and COCO export (issue 7). A hook is
# ``bench/scale_hooks/<name>.py`` with ``measure(*, project, user, repeat) -> dict`` (figures in ms,
# or rows/s for export); until it lands the result says so.


def _number(value) -> bool:
    """A figure a ratio can be taken of (not a flag, a nested table or zero)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0


def _hook(name: str):
    try:
        return importlib.import_module(f"bench.scale_hooks.{name}").measure
    except ModuleNotFoundError:
        return None


def _hook_state(name: str) -> str:
    return "measured" if _hook(name) is not None else "not on this branch yet (bench/scale_hooks/%s.py)" % name


if __name__ == "__main__":
    main()
