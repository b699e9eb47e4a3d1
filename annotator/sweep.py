"""The periodic sweep: puts right, with no manual step, what a broker outage or a killed process
leaves behind. Queued work the broker never took (or lost when it restarted empty) is sent again;
runs whose worker went quiet are queued again or failed with a message (labeling registers that
step); unreferenced media files past a grace period are deleted, and so are finished export jobs
(with their files) older than EXPORT_KEEP_HOURS; bucket sources with a sync interval are synced
(annotator/services/buckets.py).

It runs inside every Celery worker, on a timer thread started when the worker is ready (every
SWEEP_SECONDS), so it works on the embedded filesystem broker as on Redis, with no beat process to
deploy. Every step works by conditional UPDATEs, so two workers sweeping at once do no harm."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)

# Steps other apps add (labeling adds its runs step in its AppConfig.ready): name -> step.
STEPS: dict[str, Callable[[], object]] = {}


def register(name: str, step: Callable[[], object]) -> None:
    STEPS[name] = step


def sweep_once() -> dict[str, object]:
    """Every step once; one failing step (the database briefly away) does not stop the others."""
    from annotator.exports import export_jobs_expire
    from annotator.services.buckets import bucket_syncs_due
    from annotator.services.media_gc import media_gc_periodic

    results: dict[str, object] = {}
    steps = {
        "jobs_stale": jobs_stale,
        "exports": exports_resend,
        "exports_expire": export_jobs_expire,
        "media_gc": media_gc_periodic,
        "bucket_imports": bucket_imports_resend,
        "bucket_syncs": bucket_syncs_due,
        **STEPS,
    }
    for name, step in steps.items():
        try:
            results[name] = step()
        except Exception as error:  # logged; the next tick tries again
            log.exception("sweep step %s failed", name)
            results[name] = f"failed: {error}"
    return results


def resend_due(model, now=None):
    """Queued rows to send (again): never taken by the broker (``sent_at`` empty; a grace of a few
    seconds for the request that is sending it right now), or taken so long ago that the message
    was probably lost with a broker that restarted empty. A duplicate message is harmless: the row
    is claimed by one conditional UPDATE, and the second delivery finds it taken."""
    now = now or timezone.now()
    return model.objects.filter(status="queued").filter(
        Q(sent_at__isnull=True, created_at__lt=now - timedelta(seconds=5))
        | Q(sent_at__lt=now - timedelta(seconds=settings.SWEEP_RESEND_SECONDS))
    )


def claim_send(row, now=None) -> bool:
    """Take the row's send for this sweep (another worker sweeping at once gets False)."""
    return bool(
        type(row).objects.filter(pk=row.pk, status="queued", sent_at=row.sent_at).update(sent_at=now or timezone.now())
    )


def exports_resend() -> list[int]:
    from annotator.models import ExportJob
    from annotator.tasks import export_run

    return _resend(ExportJob, export_run, "export jobs")


def bucket_imports_resend() -> list[int]:
    from annotator.models import BucketImport
    from annotator.services.bucket_import import bucket_import_run

    return _resend(BucketImport, bucket_import_run, "bucket imports")


def _resend(model, task, what: str) -> list[int]:
    """Send again (at most 100 a sweep) the queued ``model`` rows whose send the broker lost."""
    from annotator.tasks import send_now

    sent = []
    for job in resend_due(model).order_by("id")[:100]:
        if claim_send(job) and send_now(task, job.id, row=job):
            sent.append(job.id)
    if sent:
        log.warning("sweep: sent %s %s again", what, sent)
    return sent


def jobs_stale() -> dict[str, list[int]]:
    """Export jobs and bucket imports whose worker went quiet (killed mid-job: its heartbeat is older
    than RUN_STALE_SECONDS) are queued again, to start over (an export writes its file only at the
    end; an import skips what it took in already), until they have been claimed RUN_MAX_ATTEMPTS
    times; then they fail with a message that says so. The runs' own step does the same for runs."""
    from annotator.models import BucketImport, ExportJob

    now = timezone.now()
    stale = now - timedelta(seconds=settings.RUN_STALE_SECONDS)
    out: dict[str, list[int]] = {"requeued": [], "failed": []}
    for model, what in ((ExportJob, "export"), (BucketImport, "import")):
        for job in model.objects.filter(status="running", heartbeat_at__lt=stale).order_by("id")[:100]:
            # Conditional on the heartbeat we read: a worker that beat meanwhile keeps its job.
            mine = model.objects.filter(pk=job.pk, status="running", heartbeat_at=job.heartbeat_at)
            quiet = f"The worker running this {what} stopped answering at {job.heartbeat_at:%H:%M:%S} UTC"
            if job.attempts >= settings.RUN_MAX_ATTEMPTS:
                if mine.update(
                    status="failed", finished_at=now, error=f"{quiet}; stopped after {job.attempts} attempts; retry it."
                ):
                    out["failed"].append(job.id)
            elif mine.update(
                status="queued",
                sent_at=None,
                error=f"{quiet}; queued again (attempt {job.attempts + 1} of {settings.RUN_MAX_ATTEMPTS}).",
            ):
                out["requeued"].append(job.id)
    if out["requeued"] or out["failed"]:
        log.warning("sweep: jobs re-queued %s, failed %s", out["requeued"], out["failed"])
    return out


def start_timer(interval: float | None = None) -> threading.Thread:
    """The worker's sweep thread (a daemon: it ends with the worker)."""
    interval = interval or settings.SWEEP_SECONDS
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                sweep_once()
            finally:
                connection.close()  # the thread's own connection: a fresh one next tick

    thread = threading.Thread(target=loop, daemon=True, name="twinlabel-sweep")
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread
