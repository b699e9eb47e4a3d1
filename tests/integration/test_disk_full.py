"""A disk that fills under a real worker. The worker's MODEL_DIR is a filesystem of its own (a
512 MB tmpfs, where the tests may mount one: as root, as in CI), filled to the last byte once the
pretraining has written its first checkpoint. The run fails saying so, its checkpoint is whole and
the failed write gave its space back; once there is room, Retry goes on from that checkpoint, in the
same run, and the pretraining finishes and queues its probe fit."""

from __future__ import annotations

import errno

import pytest
import torch

from labeling import services
from labeling.models import EmbeddingSet, RunKind, RunStatus, TrainingRun
from labeling.paths import checkpoint_path
from labeling.runs import DISK_FULL_ERROR
from labeling.tasks import run_send
from tests import procs
from tests.factories import make_scene_project, make_user
from tests.full_disk import small_disk
from tests.labeling.conftest import TINY
from twinlabel.celery import app

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
EPOCHS = 30  # a checkpoint (90 MB) every epoch of a few steps, about one a second: the disk fills at the first


@pytest.fixture
def model_disk(tmp_path):
    with small_disk(tmp_path / "models", "512m") as root:
        yield root


def _checkpoint(run_id: int) -> dict | None:
    try:
        return torch.load(checkpoint_path(run_id), weights_only=True)
    except (FileNotFoundError, EOFError, RuntimeError):
        return None


def _fill(path) -> None:
    """Write zeros to ``path`` until the filesystem refuses another byte."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_pretraining_whose_disk_fills_fails_saying_so_and_retry_finishes_it(model_disk, media_root, settings):
    env = procs.worker_env("disk-full", media_root, model_disk)
    settings.MODEL_DIR = model_disk
    try:
        app.control.purge()
    except Exception:  # an empty filesystem queue may have nothing to purge
        pass
    project = make_scene_project(owner=make_user("owner"))
    run = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config={**TINY, "epochs": EPOCHS})

    with procs.worker(env) as worker:
        run_send(run)
        saved = procs.poll(lambda: _checkpoint(run.id), 180, interval=0.05)
        assert saved, f"no checkpoint; worker output:\n{worker.output[-4000:]}"
        filler = model_disk / "filler"
        _fill(filler)
        failed = procs.poll(lambda: TrainingRun.objects.filter(pk=run.id, status=RunStatus.FAILED).first(), 180)
        assert failed, f"the run did not fail: {TrainingRun.objects.get(pk=run.id).status}\n{worker.output[-4000:]}"
        assert failed.error.splitlines()[-1] == DISK_FULL_ERROR, failed.error[-2000:]
        kept = _checkpoint(run.id)  # whole: the last one written before the disk filled
        assert kept is not None and saved["epoch"] <= kept["epoch"] < EPOCHS
        assert not [p.name for p in model_disk.rglob("*.tmp")]  # the failed write's file is gone

        filler.unlink()  # the administrator frees some space
        retried = services.run_retry(run=failed)
        assert retried.id == run.id
        done = procs.poll(
            lambda: TrainingRun.objects.filter(pk=run.id, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]).first(),
            180,
        )
        assert done and done.status == RunStatus.SUCCEEDED, f"{done and done.error}\n{worker.output[-4000:]}"
    assert done.epoch == EPOCHS and done.error == "" and done.attempts == 1
    assert len(done.loss_history) > len(kept["loss_history"])  # went on from the checkpoint's losses
    assert EmbeddingSet.objects.filter(run=done).exists()
    assert TrainingRun.objects.filter(project=project, kind=RunKind.PRETRAIN).count() == 1
