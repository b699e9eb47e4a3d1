"""Project page and image grid latency at 10,000 and 100,000 images (rows; files are not needed).

    python -m bench.grid_latency [--sizes 10000 100000] [--repeat 20]

A fresh embedded SQLite database under a temporary folder, or the database in DATABASE_URL.
Requests go through Django's full stack (middleware, session, templates) in this process.
The target is flat: the figure at 100k within 2× of the figure at 10k.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, int_options, median_get_ms, scaling_figures, write_result

    args = int_options(sizes=[10_000, 100_000], repeat=20).parse_args()

    django_setup(ALLOWED_HOSTS="testserver")
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from annotator.services.projects import project_create

    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}", password="x")
    project = project_create(name=f"bench-grid-{time.time_ns()}", user=user, labels=["a", "b"])
    client = Client()
    client.force_login(user)
    figures = {}
    have = 0
    for size in sorted(args.sizes):
        _add_rows(project, have, size)
        have = size
        ids = list(project.images.order_by("id").values_list("id", flat=True)[size - 200 : size - 199])
        urls = {
            "project_page": f"/projects/{project.id}/",
            "grid_first_page": f"/projects/{project.id}/images/",
            "grid_deep_page": f"/projects/{project.id}/images/?after={ids[0]}",
            "grid_status_filter": f"/projects/{project.id}/images/?status=submitted",
        }
        figures[size] = {name: median_get_ms(client, url, args.repeat) for name, url in urls.items()}
        print(f"{size:>8} images: " + ", ".join(f"{k} {v:.1f} ms" for k, v in figures[size].items()))
    scaling = scaling_figures(connection.vendor, figures)
    print(f"ratio {max(figures)}/{min(figures)}: {scaling['ratio']} (target ≤ 2)")
    write_result(f"grid_latency_{connection.vendor}", {**scaling, "target_ratio": 2.0})


def _add_rows(project, start: int, stop: int) -> None:
    from tests.factories import image_row

    from annotator.models import Image

    for chunk in range(start, stop, 10_000):
        Image.objects.bulk_create(
            [
                image_row(
                    project,
                    i,
                    **({"status": "submitted", "submitted_at": "2026-01-01T00:00:00Z"} if i % 10 == 0 else {}),
                )
                for i in range(chunk, min(chunk + 10_000, stop))
            ],
            batch_size=2000,
        )


if __name__ == "__main__":
    main()
