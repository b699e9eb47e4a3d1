"""Time from the K-th new submission to refreshed suggestions, on a 10,000-image project whose
features are already computed (CPU).

    python -m bench.suggest_refresh [--images 10000] [--labeled 200] [--k 10]

The K-th submission goes through the real service (annotator.services.annotations.image_submit), which
queues the probe refit on commit; Celery runs it eagerly in this process, so the figure is the
probe fit + scoring every unlabeled image + writing images × labels suggestions + the swap,
without the broker's pickup latency (milliseconds on Redis; up to a second with the filesystem
broker's polling). Features are random (their values don't change the work done).
A fresh SQLite database under a temporary folder, or the database in DATABASE_URL.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, int_options, write_result

    args = int_options(images=10_000, labeled=200, k=10).parse_args()

    django_setup(PROBE_REFIT_EVERY=str(args.k))
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from annotator.demo.scenes import LABELS
    from tests.factories import bulk_images
    from annotator.models import Image, ImageTag
    from annotator.services.annotations import image_submit
    from annotator.services.projects import project_create
    from labeling.ml.embed import save_embeddings
    from twinlabel.celery import app
    from labeling.models import EmbeddingSet, ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun
    from labeling.paths import run_dir

    app.conf.task_always_eager = True
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
    project = project_create(name=f"bench-refresh-{time.time_ns()}", user=user, labels=LABELS)
    rng = np.random.default_rng(0)
    now = timezone.now()
    bulk_images(project, args.images, submitted=args.labeled, submitted_at=now, folder="b", size=(64, 64))
    ids = np.fromiter(Image.objects.filter(project=project).order_by("id").values_list("id", flat=True), np.int64)
    labels = list(project.labels.values_list("id", flat=True))
    ImageTag.objects.bulk_create(
        [
            ImageTag(image_id=int(i), label_id=labels[j])
            for i in ids[: args.labeled]
            for j in range(len(labels))
            if rng.random() < 0.35
        ],
        batch_size=2000,
    )
    pretrain = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    path = run_dir(pretrain.id) / "embeddings.npz"
    save_embeddings(path, ids, rng.standard_normal((len(ids), 512)).astype(np.float16))
    EmbeddingSet.objects.create(run=pretrain, project=project, path=str(path), resolution=64, count=len(ids), dim=512)
    ProjectModelState.objects.create(project=project, pretrain_run=pretrain, submissions_since_fit=0)

    import labeling.ml.active, labeling.ml.embed, labeling.ml.probe  # noqa: E401,F401  a warm worker has these loaded

    pending = list(Image.objects.filter(project=project, status="unlabeled").order_by("id")[: args.k])
    for image in pending[:-1]:
        image_submit(image=image, user=user, version=image.version)
    start = time.perf_counter()
    image_submit(image=pending[-1], user=user, version=pending[-1].version)  # the K-th: refit runs on commit
    seconds = time.perf_counter() - start
    probe = ProjectModelState.objects.get(project=project).probe_run
    assert probe is not None and probe.status == RunStatus.SUCCEEDED, probe and probe.error
    rows = Suggestion.objects.filter(run=probe).count()
    print(
        f"K-th submission to refreshed suggestions: {seconds:.2f} s ({args.images} images, "
        f"{args.labeled + args.k} labeled, {rows} suggestions written, {connection.vendor}); target < 10 s"
    )
    write_result(
        f"suggest_refresh_{connection.vendor}",
        {
            "seconds": round(seconds, 3),
            "images": args.images,
            "labeled": args.labeled + args.k,
            "suggestions_written": rows,
            "database": connection.vendor,
            "target_seconds": 10,
            "note": "eager in-process; excludes broker pickup latency",
        },
    )


if __name__ == "__main__":
    main()
