"""A run's claim, its orphans after a worker restart, and cancellation (tasks run eagerly)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling import services
from labeling.models import RunKind, RunStatus, TrainingRun
from labeling.runs import claim
from labeling.suggesting import run_probe
from labeling.tasks import resume_orphans, shard_send
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
    assert run_probe(queued.id, "a@host", send_shard=shard_send) == "not claimed"
