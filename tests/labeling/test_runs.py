"""A run's claim, its orphans after a worker restart, and cancellation (tasks run eagerly)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling import runs, services
from labeling.models import RunKind, RunStatus, TrainingRun
from labeling.runs import claim, others_waiting
from labeling.suggesting import run_probe
from labeling.tasks import resume_orphans, run_enqueue, shard_send
from tests.labeling.conftest import TINY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def test_claims_cancellation_and_orphans(project, settings):
    run = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config=TINY)
    assert claim(run.id, "a@host:1") is not None
    assert claim(run.id, "b@host:2") is None  # alive: not taken
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert claim(run.id, "b@host:2").worker == "b@host:2"  # gone quiet: taken over
    # The node that restarts finds its own run and queues it again (eagerly run here: it succeeds).
    assert resume_orphans("b@host") == [run.id]
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.attempts == 3
    queued = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, backbone_run=run)
    assert services.run_cancel(run=queued).status == RunStatus.CANCELLED
    assert run_probe(queued.id, "a@host", send_shard=shard_send, send=run_enqueue) == "not claimed"


def test_a_fit_asks_whether_runs_wait_only_past_its_slice_and_at_most_every_few_seconds(project, monkeypatch):
    run = TrainingRun.objects.create(project=project, kind=RunKind.DETECTOR, config={})
    now, asked = [100.0], []

    def others_waiting(*, run_id: int) -> bool:
        asked.append(now[0])
        return TrainingRun.objects.filter(status=RunStatus.QUEUED).exclude(pk=run_id).exists()

    monkeypatch.setattr(runs, "others_waiting", others_waiting)
    should_yield = runs.yield_check(run.id, 60, clock=lambda: now[0])
    TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config=TINY)
    now[0] = 159.0
    assert not should_yield() and asked == []  # within its slice: the database is not asked
    now[0] = 160.0
    assert should_yield() and asked == [160.0]
    TrainingRun.objects.filter(kind=RunKind.PRETRAIN).update(status=RunStatus.SUCCEEDED)
    now[0] = 160.0 + runs.WAITING_CHECK_S - 0.1
    assert should_yield() and asked == [160.0]  # the answer of a moment ago
    now[0] = 160.0 + runs.WAITING_CHECK_S
    assert not should_yield() and len(asked) == 2
    assert not runs.yield_check(run.id, 0, clock=lambda: now[0])()  # TRAINING_SLICE_S=0: never


def test_others_waiting_counts_queued_runs_and_running_probes_but_not_the_run_itself(project):
    run = TrainingRun.objects.create(project=project, kind=RunKind.DETECTOR, config={}, status=RunStatus.RUNNING)
    assert not others_waiting(run_id=run.id)
    other = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config=TINY)
    assert others_waiting(run_id=run.id)
    TrainingRun.objects.filter(pk=other.pk).update(cancel_requested=True)
    assert not others_waiting(run_id=run.id)  # a cancelled queued run never starts
    TrainingRun.objects.filter(pk=other.pk).update(status=RunStatus.RUNNING, cancel_requested=False)
    assert not others_waiting(run_id=run.id)  # a running pretraining holds another worker
    TrainingRun.objects.create(project=project, kind=RunKind.PROBE, config={}, status=RunStatus.RUNNING)
    assert others_waiting(run_id=run.id)  # its suggestion shards wait for a worker


def test_a_pretraining_pauses_at_a_step_for_a_waiting_run_and_resumes_into_the_same_run(project, settings):
    import torch

    from labeling.paths import checkpoint_path
    from labeling.pretraining import run_pretrain

    run = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config={**TINY, "epochs": 3})
    waiting = TrainingRun.objects.create(project=project, kind=RunKind.DETECTOR, config={})
    settings.TRAINING_SLICE_S = 1e-6  # a slice of one step
    later, probes = [], []

    assert run_pretrain(run.id, "a@host", send=probes.append, send_later=later.append) == "yielded"
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.attempts == 0 and run.error.startswith("Paused at step 1 ")
    assert [r.id for r in later] == [run.id] and probes == []  # no probe fit before the backbone is done
    ckpt = torch.load(checkpoint_path(run.id), weights_only=True)
    assert (ckpt["epoch"], ckpt["step_in_epoch"], len(ckpt["loss_history"])) == (0, 1, 1)  # mid-epoch

    TrainingRun.objects.filter(pk=waiting.pk).update(status=RunStatus.SUCCEEDED)
    assert run_pretrain(run.id, "a@host", send=probes.append, send_later=later.append) == "succeeded"
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.attempts == 1 and run.epoch == 3 and run.error == ""
    assert len(later) == 1 and len(probes) == 1


def test_a_pretraining_that_fills_the_disk_says_so_and_its_retry_goes_on_from_its_checkpoint(project, settings):
    """A real ENOSPC (/dev/full in place of the checkpoint's temporary file): the run fails with a
    last line people can act on, its checkpoint of before is whole, and Retry resumes the same run
    from it instead of starting the pretraining over."""
    import os

    import torch

    from labeling.paths import checkpoint_path
    from labeling.pretraining import run_pretrain

    run = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config={**TINY, "epochs": 3})
    waiting = TrainingRun.objects.create(project=project, kind=RunKind.DETECTOR, config={})
    settings.TRAINING_SLICE_S = 1e-6
    assert run_pretrain(run.id, "a@host", send=[].append, send_later=[].append) == "yielded"  # checkpoint at step 1
    TrainingRun.objects.filter(pk=waiting.pk).update(status=RunStatus.SUCCEEDED)
    path = checkpoint_path(run.id)
    before = path.read_bytes()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.symlink_to("/dev/full")

    assert run_pretrain(run.id, "a@host", send=[].append, send_later=[].append) == "failed"
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "No space left on device" in run.error
    assert run.error.splitlines()[-1] == runs.DISK_FULL_ERROR  # the line the runs table shows
    assert path.read_bytes() == before and not tmp.is_symlink()  # the partial file is gone

    retried = services.run_retry(run=run)  # the disk has room again; eagerly run to the end here
    assert retried.id == run.id
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.epoch == 3 and run.error == "" and run.attempts == 1
    assert torch.load(path, weights_only=True)["epoch"] == 3
    assert TrainingRun.objects.filter(project=project, kind=RunKind.PRETRAIN).count() == 1  # not a new run


def test_retrying_a_pretraining_without_a_checkpoint_or_a_cancelled_one_starts_a_new_run(project):
    failed = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config=TINY, status=RunStatus.FAILED)
    new = services.run_retry(run=failed)
    assert new.id != failed.id and new.status == RunStatus.SUCCEEDED
    failed.refresh_from_db()
    assert failed.status == RunStatus.FAILED
