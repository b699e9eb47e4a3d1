"""How long a probe refit waits behind a long detector fit on a one-process worker, with the runs'
pausing (TRAINING_SLICE_S, default 60 s) and without it (0).

    python bench/run_sharing.py [--boxed 100] [--slices 60 0] [--head-start 30]

A real Celery worker (bin/worker: concurrency 1, nice 10, its default TRAIN_THREADS) on a private
redis-server and a fresh embedded database, started once per slice setting.

- Project A: ``--boxed`` demo scenes (256 px) submitted with their true boxes and 20 more not
  submitted; its detector fit is the CPU preset as the app queues it (192 px, 3 s of training per
  image with boxes: 300 s at 100 images, the backbone's top two stages trained from 100), on random
  weights (no pretraining in project A).
- Project B: 40 small demo scenes, 20 submitted with their tags; a tiny pretraining (and the probe
  fit it queues) is done before the clock starts.

For each slice setting: a detector fit is queued on A; once it has trained ``--head-start`` seconds,
a probe refit is queued on B (``labeling.services.probe_start``, what the K-th submission does). We
measure the seconds from queuing the probe to its suggestions being swapped in (the run succeeded),
the detector fit's wall time, its training steps and pauses, and its held-out AP50. The second
setting's detector reads project A's letterboxed cache the first one filled (a few seconds less).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TINY = {"resolution": 16, "epochs": 2, "batch_size": 8, "projector": [64], "warmup_epochs": 0}
ENDED = ("succeeded", "failed", "cancelled")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxed", type=int, default=100, help="project A's images submitted with boxes")
    parser.add_argument("--slices", type=int, nargs="+", default=[60, 0], help="TRAINING_SLICE_S values")
    parser.add_argument("--head-start", type=float, default=30.0, help="detector training seconds before the probe")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()

    from tests.procs import PrivateRedis

    redis = PrivateRedis()
    redis.start()
    settings_env = {"CELERY_BROKER_URL": redis.url, "WORKER_CONCURRENCY": "1", "PRETRAIN_DEVICE": "cpu"}
    from bench._util import django_setup, machine_load, write_result

    work = django_setup(
        **settings_env, MODEL_DIR=str(Path(os.environ.get("TMPDIR", "/tmp")) / f"sharing-{os.getpid()}")
    )
    from django.conf import settings

    from tests import procs

    load_before = os.getloadavg()
    boxes, tags = _projects(args.boxed)
    figures: dict = {
        "settings": {
            **settings_env,
            "boxed": args.boxed,
            "head_start_s": args.head_start,
            "database": "sqlite (embedded)",
            "worker": "bin/worker, queues default+gpu, concurrency 1",
        },
        "runs": {},
    }
    try:
        for index, slice_s in enumerate(args.slices):
            env = procs.service_env(
                **settings_env,
                TRAINING_SLICE_S=str(slice_s),
                MEDIA_ROOT=str(settings.MEDIA_ROOT),
                MODEL_DIR=str(settings.MODEL_DIR),
                TWINLABEL_VAR_DIR=os.environ["TWINLABEL_VAR_DIR"],
            )
            with procs.worker(env) as worker:
                if index == 0:
                    _pretrain(tags, worker, args.timeout)
                figures["runs"][f"slice_{slice_s}"] = result = _measure(boxes, tags, worker, args)
                print(f"TRAINING_SLICE_S={slice_s}: {result}", flush=True)
    finally:
        redis.kill()
    figures["load_average"] = machine_load(load_before)
    write_result("run_sharing", figures)
    print(f"work dir {work}")


def _projects(boxed: int):
    from annotator.demo.scenes import LABELS, render_scene
    from annotator.services.annotations import BoxIn, ImageAnnotations, annotations_import
    from annotator.services.images import images_import
    from annotator.services.projects import project_create
    from annotator.sources import ImageSource
    from tests.factories import make_scene_project, make_user

    owner = make_user("owner")
    boxes = project_create(name="Boxes", user=owner, labels=LABELS)

    def png(i: int) -> bytes:
        buffer = io.BytesIO()
        render_scene(i, size=(256, 256)).image.save(buffer, "PNG")
        return buffer.getvalue()

    report = images_import(
        project=boxes, sources=[ImageSource(f"s{i}.png", lambda i=i: png(i)) for i in range(boxed + 20)]
    )
    label_id = dict(boxes.labels.values_list("name", "id"))
    items = [
        ImageAnnotations(
            item.image_id,
            boxes=tuple(BoxIn(label_id[o.label], *o.box) for o in render_scene(i, size=(256, 256)).objects),
        )
        for i, item in enumerate(report.imported[:boxed])
    ]
    annotations_import(project=boxes, user=owner, items=items)
    tags = make_scene_project(owner=owner, images=40, labeled=20)
    return boxes, tags


def _wait(condition, timeout: float, what: str, worker):
    from tests import procs

    value = procs.poll(condition, timeout, interval=0.1)
    if not value:
        raise TimeoutError(f"{what}\n{worker.output[-3000:]}")
    return value


def _ended(run_id: int):
    from labeling.models import TrainingRun

    return TrainingRun.objects.filter(pk=run_id, status__in=ENDED).first()


def _idle(project) -> bool:
    from labeling.models import ACTIVE_STATUSES, TrainingRun

    return not TrainingRun.objects.filter(project=project, status__in=ACTIVE_STATUSES).exists()


def _pretrain(project, worker, timeout: float) -> None:
    from labeling import services

    run = services.pretrain_start(project=project, config=TINY)
    done = _wait(lambda: _ended(run.id), timeout, "the tiny pretraining did not end", worker)
    assert done.status == "succeeded", done.error
    _wait(lambda: _idle(project), timeout, "the first probe fit did not end", worker)


def _measure(boxes, tags, worker, args) -> dict:
    from labeling import services
    from labeling.models import ACTIVE_STATUSES, RunKind, TrainingRun

    _wait(lambda: _idle(boxes) and _idle(tags), args.timeout, "runs left over", worker)
    detector = services.detector_start(project=boxes)
    running = _wait(
        lambda: TrainingRun.objects.filter(pk=detector.id, status="running", step__gt=0).first(),
        args.timeout,
        "the detector fit did not start training",
        worker,
    )
    time.sleep(max(0.0, args.head_start - (time.time() - running.started_at.timestamp())))
    queued_at = time.monotonic()
    probe = services.probe_start(project=tags)
    assert probe is not None and probe.kind == RunKind.PROBE
    probed = _wait(lambda: _ended(probe.id), args.timeout, "the probe refit did not end", worker)
    probe_wait = time.monotonic() - queued_at
    assert probed.status == "succeeded", probed.error
    detector_during = TrainingRun.objects.get(pk=detector.id)
    done = _wait(lambda: _ended(detector.id), args.timeout, "the detector fit did not end", worker)
    assert done.status == "succeeded", done.error
    assert not TrainingRun.objects.filter(pk=detector.id, status__in=ACTIVE_STATUSES).exists()
    coco = done.metrics.get("coco") or {}
    return {
        "probe_queued_to_suggestions_s": round(probe_wait, 1),
        "detector_status_when_the_probe_finished": detector_during.status,
        "detector_wall_s": round((done.finished_at - done.created_at).total_seconds(), 1),
        "detector_time_budget_s": done.config["plan"]["detector"].get("time_budget_s"),
        "detector_trainable_layers": done.config["plan"]["detector"].get("trainable_layers"),
        "detector_steps": done.step,
        "detector_pauses": worker.output.count("'yielded'"),
        "detector_attempts": done.attempts,
        "detector_held_out_ap50": coco.get("ap50"),
    }


if __name__ == "__main__":
    main()
