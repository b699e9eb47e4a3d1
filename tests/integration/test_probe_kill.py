"""kill -9 of the worker while the probe fits, and again while it writes suggestions: people keep
seeing the previous probe's suggestions, whole, until the new run has written every row and swapped
in; the run is taken up again by the next worker and finishes once, with no duplicate rows."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from django.conf import settings

from twinlabel.celery import app
from annotator.models import Image, ImageTag
from annotator.services.projects import project_create
from labeling import selectors, services
from labeling.data import write_blocks
from labeling.paths import embeddings_dir
from labeling.models import EmbeddingSet, ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun
from tests import procs
from tests.factories import bulk_images, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
LABELS = ("a", "b", "c", "d", "e", "f")
LABELED, UNLABELED, DIM = 2000, 12_000, 64


def _project():
    """Image rows (no files: the probe reads only embeddings), random tags, a finished pretraining
    with its embeddings, and an earlier probe whose suggestions are the ones people see now."""
    rng = np.random.default_rng(0)
    project = project_create(name="Big", user=make_user("owner"), labels=LABELS)
    labels = list(project.labels.order_by("id"))
    now = time.time()
    bulk_images(
        project, LABELED + UNLABELED, submitted=LABELED, submitted_at="2026-01-01T00:00:00Z", folder="x", size=(8, 8)
    )
    ids = np.array(list(Image.objects.filter(project=project).order_by("id").values_list("id", flat=True)))
    present = rng.random((len(ids), len(labels))) < 0.4
    ImageTag.objects.bulk_create(
        [ImageTag(image_id=int(ids[n]), label=labels[j]) for n in range(LABELED) for j in np.flatnonzero(present[n])],
        batch_size=5000,
    )
    features = (present * 2.0 + rng.normal(size=(len(ids), len(labels)))) @ rng.normal(size=(len(labels), DIM))
    pretrain = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED, config={})
    features = features.astype(np.float16)
    write_blocks(
        backbone_run_id=pretrain.id,
        ids=ids,
        s=settings.SHARD_IMAGES,
        embed=lambda part: features[np.searchsorted(ids, part)],
    )
    EmbeddingSet.objects.create(
        run=pretrain,
        project=project,
        path=str(embeddings_dir(pretrain.id)),
        resolution=24,
        count=len(ids),
        dim=DIM,
        block_size=settings.SHARD_IMAGES,
    )
    old = TrainingRun.objects.create(
        project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED, config={}, backbone_run=pretrain
    )
    shown = [int(i) for i in ids[LABELED : LABELED + 20]]
    Suggestion.objects.bulk_create(
        [Suggestion(run=old, image_id=i, label=labels[0], probability=0.9, predicted=True) for i in shown]
    )
    ProjectModelState.objects.create(project=project, pretrain_run=pretrain, probe_run=old)
    print(f"set-up {time.time() - now:.1f} s")
    return project, old, shown


def _visible(shown):
    return {i: selectors.image_suggestions(image=Image.objects.get(pk=i)) for i in shown[:5]}


def _wait(condition, timeout, what, worker, poll=0.3):
    value = procs.poll(condition, timeout, interval=poll)
    if value:
        return value
    runs = list(TrainingRun.objects.values("id", "kind", "status", "worker", "attempts", "error"))
    raise AssertionError(f"timed out waiting for {what}; runs: {runs}\nworker output:\n{worker.output[-4000:]}")


def _kill(worker):
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(10)


def test_kill_9_while_the_probe_fits_and_while_it_writes_leaves_the_old_suggestions_whole(
    tmp_path, media_root, settings
):
    # One worker scores the blocks in turn (SUGGEST_PARALLEL off), each block written whole (one COPY on
    # PostgreSQL): small blocks, so that the kill lands between blocks, with some written and some not.
    # Fine-tuning off: with 2,000 labels a refit would otherwise come in two stages, and the second
    # (tests/integration/test_model_assistance.py) would swap this run out before the checks below.
    env = procs.worker_env(
        "probe-kill",
        media_root,
        tmp_path / "models",
        SUGGEST_PARALLEL="0",
        SHARD_IMAGES="1000",
        SUGGEST_FINETUNE_FROM="0",
    )
    settings.SHARD_IMAGES = 1000
    try:
        app.control.purge()
    except Exception:  # an empty filesystem queue may have nothing to purge
        pass
    settings.MODEL_DIR = tmp_path / "models"  # where the blocks are written: the worker's MODEL_DIR
    project, old, shown = _project()
    before = _visible(shown)
    assert all(len(s) == 1 for s in before.values())
    expected_rows = UNLABELED * len(LABELS)

    def rows():
        return Suggestion.objects.filter(run=run).count()

    with procs.worker(env) as first:
        run = services.probe_start(project=project)
        # The kill lands while the probe is being fitted: claimed, nothing written yet.
        _wait(
            lambda: TrainingRun.objects.filter(pk=run.id, status=RunStatus.RUNNING).exists(),
            120,
            "the claim",
            first,
            poll=0.01,
        )
        _kill(first)
    assert rows() == 0, "the first kill came after the fit; make the fit longer"
    assert _visible(shown) == before and ProjectModelState.objects.get(project=project).probe_run_id == old.id

    with procs.worker(env) as second:  # the same node name takes back what its predecessor held
        # The kill lands while suggestions are being written, batch by batch.
        _wait(lambda: rows() > 0, 180, "the first suggestion rows", second, poll=0.01)
        _kill(second)
    written = rows()
    assert 0 < written < expected_rows, f"{written} of {expected_rows} rows: the kill missed the writing"
    # Half of a run's rows are in the table, and nobody sees them: the old probe is still the one shown.
    assert TrainingRun.objects.get(pk=run.id).status == RunStatus.RUNNING
    assert ProjectModelState.objects.get(project=project).probe_run_id == old.id
    assert _visible(shown) == before

    with procs.worker(env) as third:
        done = _wait(
            lambda: TrainingRun.objects.filter(pk=run.id, status=RunStatus.SUCCEEDED).first(),
            240,
            "the retried probe",
            third,
        )
    assert done.attempts == 3
    trained = sum(1 for label in done.metrics["labels"] if label["trained"])
    assert trained == len(LABELS)
    assert rows() == expected_rows  # once per image and label, nothing left from the killed attempts
    assert ProjectModelState.objects.get(project=project).probe_run_id == run.id
    assert not Suggestion.objects.filter(run=old).exists()
    now_shown = _visible(shown)
    assert all(len(s) == len(LABELS) for s in now_shown.values())
