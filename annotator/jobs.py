"""What a worker's background job (an export, a bucket import) does to be looked after by the sweep
(annotator/sweep.py ``jobs_stale``): claim it with an attempt counted, and beat while it works."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone


def job_claim(model, job_id: int, **fields) -> bool:
    """Take a queued export or bucket import for this worker (a second delivery finds it taken):
    running, its heartbeat now, one more attempt."""
    from django.db.models import F

    return bool(
        model.objects.filter(pk=job_id, status="queued").update(
            status="running", error="", heartbeat_at=timezone.now(), attempts=F("attempts") + 1, **fields
        )
    )


class JobHeartbeat:
    """Call it as often as you like while a job works: it writes the job's heartbeat at most every
    JOB_HEARTBEAT_SECONDS."""

    def __init__(self, model, job_id: int) -> None:
        self.model, self.job_id = model, job_id
        self.last = timezone.now()

    def __call__(self) -> None:
        now = timezone.now()
        if (now - self.last).total_seconds() >= settings.JOB_HEARTBEAT_SECONDS:
            self.model.objects.filter(pk=self.job_id, status="running").update(heartbeat_at=now)
            self.last = now
