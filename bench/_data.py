"""Big projects for benchmarks, fast: image and box rows written with executemany in big batches
(no files decoded: every row points at one real image file)."""

from __future__ import annotations

import random
import time


def big_project(
    *, project, template, images: int, boxes_per_image: int, labels: list[int], batch: int = 20_000, seed: int = 0
) -> float:
    """Add ``images`` image rows (640×480, status submitted) and ``boxes_per_image`` boxes each to
    ``project``. Returns the seconds it took."""
    from django.db import connection, transaction
    from django.utils import timezone

    rng = random.Random(seed)
    now = timezone.now()
    start = time.perf_counter()
    with connection.cursor() as cursor:
        for low in range(0, images, batch):
            high = min(low + batch, images)
            with transaction.atomic():
                cursor.executemany(
                    "INSERT INTO annotator_image (project_id, file, thumbnail, original_name, width, height, size_bytes,"
                    " sha256, status, submitted_at, version, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s, %s)",
                    [
                        (
                            project.id,
                            template.file.name,
                            template.thumbnail.name,
                            f"img-{i:07d}.png",
                            640,
                            480,
                            1000,
                            f"{project.id}-{i:060d}",
                            "submitted",
                            now,
                            1,
                            now,
                        )
                        for i in range(low, high)
                    ],
                )
                cursor.execute(
                    "SELECT id FROM annotator_image WHERE project_id = %s AND sha256 >= %s AND sha256 <= %s",
                    [project.id, f"{project.id}-{low:060d}", f"{project.id}-{high - 1:060d}"],
                )
                ids = [row[0] for row in cursor.fetchall()]
                rows = []
                for image_id in ids:
                    for _ in range(boxes_per_image):
                        x, y = rng.uniform(0, 500), rng.uniform(0, 380)
                        rows.append(
                            (
                                image_id,
                                rng.choice(labels),
                                round(x, 2),
                                round(y, 2),
                                round(rng.uniform(5, 640 - x), 2),
                                round(rng.uniform(5, 480 - y), 2),
                                "human",
                                now,
                            )
                        )
                cursor.executemany(
                    "INSERT INTO annotator_box (image_id, label_id, x, y, w, h, source, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE annotator_image; ANALYZE annotator_box")
    return time.perf_counter() - start
