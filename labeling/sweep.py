"""The runs' step of the periodic sweep (annotator/sweep.py runs it in every worker).

A running run whose heartbeat is older than RUN_STALE_SECONDS lost its worker (killed, or the
shard tasks of its suggestions lost with a broker that restarted): it is queued again, to resume
from its last checkpoint, until it has been claimed RUN_MAX_ATTEMPTS times; then it fails with a
message that says so. Queued runs the broker never took (or lost) are sent again."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from annotator.sweep import claim_send, resend_due
from labeling.models import RunStatus, TrainingRun
from labeling.tasks import run_send

log = logging.getLogger(__name__)


def runs_sweep() -> dict[str, list[int]]:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.RUN_STALE_SECONDS)
    requeued, failed = [], []
    for run in TrainingRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale).order_by("id")[:100]:
        # Conditional on the heartbeat we read: a worker that beat meanwhile keeps its run.
        mine = TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, heartbeat_at=run.heartbeat_at)
        quiet = (
            f"The worker running this ({run.worker or 'unknown'}) stopped answering at {run.heartbeat_at:%H:%M:%S} UTC"
        )
        if run.attempts >= settings.RUN_MAX_ATTEMPTS or run.cancel_requested:
            why = "it was cancelled" if run.cancel_requested else f"after {run.attempts} attempts; retry it"
            if mine.update(
                status=RunStatus.CANCELLED if run.cancel_requested else RunStatus.FAILED,
                finished_at=now,
                error=f"{quiet}; stopped {why}.",
            ):
                failed.append(run.id)
        elif mine.update(
            status=RunStatus.QUEUED,
            worker="",
            sent_at=None,
            error=f"{quiet}; queued again to resume (attempt {run.attempts + 1} of {settings.RUN_MAX_ATTEMPTS}).",
        ):
            requeued.append(run.id)
    sent = resend_queued(now)
    if requeued or failed or sent:
        log.warning("sweep: runs re-queued %s, failed %s, sent again %s", requeued, failed, sent)
    return {"requeued": requeued, "failed": failed, "sent": sent}


def resend_queued(now=None) -> list[int]:
    sent = []
    for run in resend_due(TrainingRun, now).filter(cancel_requested=False).order_by("id")[:100]:
        if claim_send(run, now) and run_send(run):
            sent.append(run.id)
    return sent
