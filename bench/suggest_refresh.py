"""Time from the K-th new submission to refreshed suggestions, on a 10,000-image project whose
features are already computed (CPU).

    python -m bench.suggest_refresh [--images 10000] [--labeled 200] [--k 10] [--finetune 1]

The K-th submission goes through the real service (annotator.services.annotations.image_submit), which
queues the probe refit on commit; Celery runs it eagerly in this process, so the figure is the
probe fit + scoring every unlabeled image + writing images × labels suggestions + the swap,
without the broker's pickup latency (milliseconds on Redis; up to a second with the filesystem
broker's polling). From SUGGEST_FINETUNE_FROM submitted images (the CPU's 200) a refit has two
stages: the frozen probe's suggestions first, then a run that fine-tunes the backbone and swaps its
own in; both are timed from the K-th submission (the runs' finished_at).

Default: random features, no pretraining checkpoint and fine-tuning off: the frozen probe's refit
(their values don't change its work), which is what a refit below the rule does, and its first stage above it. ``--finetune 1``:
the whole path: real image files (noise, 64 px), a real pretraining of the CPU preset's network
(a 20 s budget: its weights' values don't change the work either), its image cache and embeddings,
and the second stage's cross-fitted fine-tuning and network scoring of every unlabeled image.
A fresh SQLite database under a temporary folder, or the database in DATABASE_URL.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, int_options, write_result

    args = int_options(images=10_000, labeled=200, k=10, finetune=0).parse_args()

    # Without --finetune, fine-tuning is off: the frozen probe's refit, which is also the first stage.
    work = django_setup(
        PROBE_REFIT_EVERY=str(args.k),
        PRETRAIN_DEVICE="cpu",
        **({} if args.finetune else {"SUGGEST_FINETUNE_FROM": "0"}),
    )
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from annotator.demo.scenes import LABELS
    from tests.factories import bulk_images, embeddings
    from annotator.models import Image, ImageTag
    from annotator.services.annotations import image_submit
    from annotator.services.projects import project_create
    from twinlabel.celery import app
    from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun

    app.conf.task_always_eager = True
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
    project = project_create(name=f"bench-refresh-{time.time_ns()}", user=user, labels=LABELS)
    rng = np.random.default_rng(0)
    now = timezone.now()
    bulk_images(project, args.images, submitted=args.labeled, submitted_at=now, folder="b", size=(64, 64))
    if args.finetune:
        _noise_files(work / "media" / "b", args.images, rng)
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
    if args.finetune:  # the real pretraining, its first probe fit without fine-tuning (setup, not timed)
        from django.conf import settings

        from labeling import services

        settings.SUGGEST_FINETUNE_FROM = 0
        t = time.perf_counter()
        pretrain = services.pretrain_start(project=project, config={"time_budget_s": 20})
        pretrain.refresh_from_db()
        assert pretrain.status == RunStatus.SUCCEEDED, pretrain.error
        print(f"setup: pretraining, embeddings and a first fit in {time.perf_counter() - t:.0f} s", flush=True)
        settings.SUGGEST_FINETUNE_FROM = None  # the device's rule again
    else:  # random features in the worker's blocks (their values don't change the frozen probe's work)
        embeddings(project, ids, rng.standard_normal((len(ids), 512)))
        ProjectModelState.objects.filter(project=project).update(submissions_since_fit=0)
    before = set(TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).values_list("id", flat=True))

    import labeling.ml.active, labeling.ml.embed, labeling.ml.probe  # noqa: E401,F401  a warm worker has these loaded

    pending = list(Image.objects.filter(project=project, status="unlabeled").order_by("id")[: args.k])
    for image in pending[:-1]:
        image_submit(image=image, user=user, version=image.version)
    start, t = timezone.now(), time.perf_counter()
    image_submit(image=pending[-1], user=user, version=pending[-1].version)  # the K-th: refit runs on commit
    seconds = time.perf_counter() - t
    stages = []
    for probe in TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).exclude(id__in=before).order_by("id"):
        assert probe.status == RunStatus.SUCCEEDED, probe.error
        finetune = probe.metrics.get("finetune") or {}
        stages.append(
            {
                "run": probe.id,
                "seconds": round((probe.finished_at - start).total_seconds(), 3),
                "scorer": probe.metrics.get("scorer"),
                "finetune": {k: finetune.get(k) for k in ("deferred", "skipped", "kept", "seconds") if k in finetune},
            }
        )
    rows = Suggestion.objects.filter(run=ProjectModelState.objects.get(project=project).probe_run).count()
    for n, stage in enumerate(stages, 1):
        print(
            f"K-th submission to stage {n}'s suggestions ({stage['scorer']}, {stage['finetune']}): {stage['seconds']:.2f} s"
        )
    print(
        f"({args.images} images, {args.labeled + args.k} labeled, {rows} suggestions written, {connection.vendor}); "
        f"target < 10 s for the first; {seconds:.2f} s until the submission's eager chain returned"
    )
    write_result(
        f"suggest_refresh_{connection.vendor}" + ("_finetune" if args.finetune else ""),
        {
            "seconds": stages[0]["seconds"],
            "stages": stages,
            "chain_seconds": round(seconds, 3),
            "images": args.images,
            "labeled": args.labeled + args.k,
            "finetune_mode": bool(args.finetune),
            "suggestions_written": rows,
            "database": connection.vendor,
            "target_seconds": 10,
            "note": "eager in-process; excludes broker pickup latency",
        },
    )


def _noise_files(folder, count: int, rng) -> None:
    """``count`` 64 px PNGs of noise at folder/{i}.png, the files bulk_images' rows name."""
    import io

    import numpy as np
    from PIL import Image as PILImage

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        buffer = io.BytesIO()
        PILImage.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
        (folder / f"{i}.png").write_bytes(buffer.getvalue())


if __name__ == "__main__":
    main()
