"""Import of an external model's predictions: 10,000 images x 6 labels through the real endpoint
(POST /api/projects/{id}/predictions/, JSON body), matched by file name, judged on the submitted
images by labeling/trust.py, stored as suggestions of an external run and swapped in.

    python -m bench.predictions_import [--images 10000] [--labeled 500] [--repeat 3]

Rows/s = tag predictions in the file / the request's wall time (parse + match + evaluation +
writes + swap). A fresh SQLite database under a temporary folder, or the database in DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, int_options, machine_load, write_result

    args = int_options(images=10_000, labeled=500, repeat=3).parse_args()
    load = os.getloadavg()
    django_setup()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from annotator.demo.scenes import LABELS
    from annotator.models import Image, ImageTag
    from annotator.services.projects import project_create
    from labeling.models import Suggestion
    from tests.factories import bulk_images

    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
    project = project_create(name=f"bench-predictions-{time.time_ns()}", user=user, labels=LABELS)
    bulk_images(project, args.images, submitted=args.labeled, submitted_at=timezone.now(), folder="b", size=(64, 64))
    rows = list(Image.objects.filter(project=project).order_by("id").values_list("id", "original_name"))
    labels = list(project.labels.order_by("order", "id").values_list("id", "name"))
    rng = np.random.default_rng(0)
    truth = rng.random((len(rows), len(labels))) < 0.3
    ImageTag.objects.bulk_create(
        [
            ImageTag(image_id=rows[n][0], label_id=labels[j][0])
            for n in range(args.labeled)
            for j in np.flatnonzero(truth[n])
        ],
        batch_size=5000,
    )
    # A decent model: positives score high, with noise.
    scores = np.clip(np.where(truth, 0.75, 0.25) + rng.normal(0, 0.2, truth.shape), 0, 1).round(4)
    doc = {
        "model_version": "bench-model",
        "predictions": [
            {
                "file_name": name,
                "tags": [{"label": labels[j][1], "score": float(scores[n, j])} for j in range(len(labels))],
            }
            for n, (_, name) in enumerate(rows)
        ],
    }
    body = json.dumps(doc)
    predictions = len(rows) * len(labels)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    url = f"/api/projects/{project.id}/predictions/"
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        response = client.post(url, body, content_type="application/json")
        times.append(time.perf_counter() - start)
        assert response.status_code == 201, response.content[:500]
    report = response.json()
    stored = Suggestion.objects.filter(run_id=report["run_id"]).count()
    best, median = min(times), statistics.median(times)
    figures = {
        "images": len(rows),
        "labels": len(labels),
        "predictions": predictions,
        "labeled": args.labeled,
        "body_mb": round(len(body) / 1e6, 2),
        "suggestions_stored": stored,
        "confident": report["confident"],
        "seconds": [round(t, 2) for t in times],
        "rows_per_s_best": round(predictions / best),
        "rows_per_s_median": round(predictions / median),
        "database": connection.vendor,
        "load": machine_load(load),
    }
    print(
        f"predictions import: {predictions} rows ({len(rows)} images x {len(labels)} labels, {figures['body_mb']} MB) "
        f"in {median:.2f} s median of {args.repeat} ({figures['rows_per_s_median']} rows/s; best "
        f"{figures['rows_per_s_best']}); {stored} suggestions stored, {report['confident']} confident; "
        f"{connection.vendor}; load {figures['load']}"
    )
    write_result("predictions_import", figures)


if __name__ == "__main__":
    main()
