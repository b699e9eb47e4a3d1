"""Latency of every request the annotate page makes, over HTTP to the real web server (bin/web,
gunicorn), at 10,000 and 100,000 images: open an image's annotations, save them, take the next
image from the queue, submit.

    python -m bench.api_latency [--sizes 10000 100000] [--repeat 60]

Label Studio 1.23.2 on this kind of machine: 96 ms median to GET a task, 220 ms median to POST an
annotation. The scoreboard's target is ≤ 1/5 of that (≤ 19 ms and ≤ 44 ms), flat with project size.
A fresh embedded SQLite database under a temporary folder, or the database in DATABASE_URL.
"""

from __future__ import annotations

import os
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

LABEL_STUDIO_MS = {"get_task": 96, "post_annotation": 220}


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, int_options, scaling_figures, write_result

    args = int_options(sizes=[10_000, 100_000], repeat=60).parse_args()

    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotator.models import Image
    from annotator.services.projects import project_create
    from bench._http import Session
    from tests import procs
    from tests.factories import add_images

    password = secrets.token_urlsafe(12)
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}", password=password)
    project = project_create(name=f"bench-api-{time.time_ns()}", user=user, labels=["cat", "dog"])
    (real,) = add_images(project, 1, size=(640, 480))
    template = Image.objects.get(pk=real)
    labels = list(project.labels.values_list("id", flat=True))
    connection.close()
    env = procs.service_env(MEDIA_ROOT=os.environ["MEDIA_ROOT"], WEB_ACCESS_LOG="/dev/null", WEB_WORKERS="2")
    if not os.environ.get("DATABASE_URL"):
        env.pop("DATABASE_URL")
    figures, have = {}, 1
    with procs.web(env) as (_, url):
        session = Session(url, user.username, password)
        for size in sorted(args.sizes):
            _add_rows(project, template, have, size)
            have = size
            figures[size] = _measure(session, project.id, labels, args.repeat)
            print(f"{size:>8} images: " + ", ".join(f"{k} {v} ms" for k, v in figures[size].items()))
    large = figures[max(figures)]
    scaling = scaling_figures(connection.vendor, figures)
    print(
        f"ratio {max(figures)}/{min(figures)}: {scaling['ratio']}; Label Studio: GET task 96 ms, POST annotation 220 ms"
    )
    write_result(
        f"api_latency_{connection.vendor}",
        {
            **scaling,
            "label_studio_median_ms": LABEL_STUDIO_MS,
            "vs_label_studio": {
                "get_annotations": round(large["get_annotations"] / 96, 3),
                "put_annotations": round(large["put_annotations"] / 220, 3),
            },
            "target": "≤ 0.2 of Label Studio; ratio ≤ 2",
        },
    )


def _add_rows(project, template, start: int, stop: int) -> None:
    from tests.factories import image_row

    from annotator.models import Image

    for chunk in range(start, stop, 10_000):
        Image.objects.bulk_create(
            [
                image_row(
                    project,
                    i,
                    file=template.file.name,
                    thumbnail=template.thumbnail.name,
                )
                for i in range(chunk, min(chunk + 10_000, stop))
            ],
            batch_size=2000,
        )


def _measure(session, project_id: int, labels: list[int], repeat: int) -> dict[str, float]:
    times = {"queue_next": [], "get_annotations": [], "put_annotations": [], "submit": []}
    for _ in range(repeat):
        ms, answer = session.json("POST", f"/api/projects/{project_id}/queue/next", {"order": "sequential"})
        times["queue_next"].append(ms)
        image_id = answer["image"]["image"]["id"]
        ms, state = session.json("GET", f"/api/images/{image_id}/annotations")
        times["get_annotations"].append(ms)
        boxes = [{"label": random.choice(labels), "x": 10.0 * k, "y": 20.0, "w": 30.0, "h": 40.0} for k in range(5)]
        ms, state = session.json(
            "PUT",
            f"/api/images/{image_id}/annotations",
            {"version": state["image"]["version"], "boxes": boxes, "tags": [labels[0]]},
        )
        times["put_annotations"].append(ms)
        ms, _ = session.json("POST", f"/api/images/{image_id}/submit", {"version": state["image"]["version"]})
        times["submit"].append(ms)
    return {name: round(statistics.median(values), 2) for name, values in times.items()}


if __name__ == "__main__":
    main()
