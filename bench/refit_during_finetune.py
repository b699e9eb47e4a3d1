"""How long the K-th submission's refit waits for its suggestions when it falls due while a refit's
second stage fine-tunes the backbone (minutes on a CPU), on a one-process worker.

    python bench/refit_during_finetune.py [--labeled 200] [--images 300]

A real Celery worker (bin/worker: concurrency 1, nice 10, its default TRAIN_THREADS) on a private
redis-server and a fresh embedded database. One project of ``--images`` demo scenes (48 px), the
first ``--labeled`` submitted with their true tags; a one-epoch 32 px pretraining queues the probe
fit, whose first stage swaps in the frozen probe's suggestions and defers the fine-tuning
(SUGGEST_FINETUNE_FROM=``--labeled``) to a second stage. Once that stage has trained its first
network, a refit is queued (``labeling.services.probe_start``, what the K-th submission does) and
we measure the seconds from queuing it to its suggestions being swapped in, and when the
fine-tuning itself ended. Before 2026-12-07 (stop 43) no refit could be queued while the second
stage was queued or running: the submissions counted towards the next one, queued by the first
submission after the fine-tuning ended, so the wait was at least the rest of the fine-tuning.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PRETRAIN = {"resolution": 32, "epochs": 1, "batch_size": 64, "projector": [256], "warmup_epochs": 0}
ENDED = ("succeeded", "failed", "cancelled")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labeled", type=int, default=200)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()

    from tests.procs import PrivateRedis

    redis = PrivateRedis()
    redis.start()
    settings_env = {
        "CELERY_BROKER_URL": redis.url,
        "WORKER_CONCURRENCY": "1",
        "PRETRAIN_DEVICE": "cpu",
        "SUGGEST_FINETUNE_FROM": str(args.labeled),
    }
    from bench._util import django_setup, machine_load, write_result

    work = django_setup(**settings_env, MODEL_DIR=str(Path(os.environ.get("TMPDIR", "/tmp")) / f"refit-{os.getpid()}"))
    from django.conf import settings

    from tests import procs
    from tests.factories import make_scene_project, make_user

    load_before = os.getloadavg()
    project = make_scene_project(owner=make_user("owner"), images=args.images, labeled=args.labeled)
    env = procs.service_env(
        **settings_env,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        MODEL_DIR=str(settings.MODEL_DIR),
        TWINLABEL_VAR_DIR=os.environ["TWINLABEL_VAR_DIR"],
    )
    try:
        with procs.worker(env) as worker:
            result = _measure(project, worker, args.timeout)
    finally:
        redis.kill()
    print(result, flush=True)
    figures = {
        "settings": {
            **settings_env,
            "images": args.images,
            "labeled": args.labeled,
            "pretraining": PRETRAIN,
            "database": "sqlite (embedded)",
            "worker": "bin/worker, queues default+gpu, concurrency 1",
        },
        **result,
        "load_average": machine_load(load_before),
    }
    write_result("refit_during_finetune", figures)
    print(f"work dir {work}")


def _wait(condition, timeout: float, what: str, worker):
    from tests import procs

    value = procs.poll(condition, timeout, interval=0.1)
    if not value:
        raise TimeoutError(f"{what}\n{worker.output[-3000:]}")
    return value


def _measure(project, worker, timeout: float) -> dict:
    from labeling import services
    from labeling.models import ACTIVE_STATUSES, RunKind, TrainingRun

    pretrain = services.pretrain_start(project=project, config=PRETRAIN)
    runs = TrainingRun.objects.filter(project=project)
    ended = _wait(lambda: runs.filter(pk=pretrain.id, status__in=ENDED).first(), timeout, "pretraining", worker)
    assert ended.status == "succeeded", ended.error
    tuning = _wait(
        lambda: runs.filter(finetune_stage=True, status="running", metrics__finetune__networks__gte=1).first(),
        timeout,
        "the second stage's first network",
        worker,
    )
    queued_at = time.monotonic()
    refit = services.probe_start(project=project)
    assert refit is not None and refit.kind == RunKind.PROBE and not refit.finetune_stage
    done = _wait(lambda: runs.filter(pk=refit.id, status__in=ENDED).first(), timeout, "the refit", worker)
    refit_s = time.monotonic() - queued_at
    assert done.status == "succeeded", done.error
    tuned = _wait(lambda: runs.filter(pk=tuning.id, status__in=ENDED).first(), timeout, "the fine-tuning", worker)
    tuned_s = time.monotonic() - queued_at
    assert tuned.status == "succeeded", tuned.error
    for run in runs.filter(status__in=ACTIVE_STATUSES):  # the newer labels' fine-tuning: not measured here
        services.run_cancel(run=run)
    finetune = tuned.metrics.get("finetune") or {}
    return {
        "refit_queued_to_suggestions_s": round(refit_s, 1),
        "refit_labeled": done.metrics.get("labeled"),
        "finetune_ended_after_the_refit_was_queued_s": round(tuned_s, 1),
        "finetune_seconds": finetune.get("seconds"),
        "finetune_networks_at_the_refit": tuning.metrics["finetune"]["networks"],
        "finetune_pauses": finetune.get("paused"),
        "finetune_kept": finetune.get("kept"),
        "finetune_shown": tuned.metrics.get("shown", True),
    }


if __name__ == "__main__":
    main()
