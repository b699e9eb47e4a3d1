"""Queueing helpers and health tasks: the cheapest proof that a worker is up, reads its queue and
reaches the database."""

from __future__ import annotations

import logging
import os
import socket

from celery import Task, shared_task
from django.db import connection, models, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from annotator.exports import export_job_run, export_jobs_expire

log = logging.getLogger(__name__)

# What a queued row says while the broker cannot be reached; the sweep sends it again and the
# worker that claims it clears the message.
QUEUE_DOWN_MESSAGE = "Queued: the worker queue cannot be reached right now; this will start by itself when it is back."


def enqueue(task: Task, *args, row: models.Model | None = None, **kwargs) -> None:
    """Send ``task`` once the current transaction commits, so a worker never reads rows that
    are not there yet, and a rolled-back request sends nothing. Pass ids, never model objects.

    The work is already committed when this runs, so a broker that is down must not fail the
    request: the send is tried once (bounded by the broker time-outs in the settings), and ``row``
    (a queued TrainingRun or ExportJob: it has ``sent_at`` and ``error``) records the outcome:
    ``sent_at`` when the broker took the message, else QUEUE_DOWN_MESSAGE for the user and
    ``sent_at`` left empty, for the periodic sweep (annotator/sweep.py) to send it again."""
    transaction.on_commit(lambda: send_now(task, *args, row=row, **kwargs))


def send_now(task: Task, *args, row: models.Model | None = None, options: dict | None = None, **kwargs) -> bool:
    """Send ``task`` now; False (logged, never raised) when the broker is unreachable. ``options``:
    Celery's sending options (``countdown``, say)."""
    try:
        if options:
            task.apply_async(args, kwargs, **options)
        else:
            task.delay(*args, **kwargs)
    except Exception as error:  # any broker or result-backend failure: kombu, redis, OS errors
        log.warning("could not send %s%s (%s); the sweep sends it again", task.name, args, error)
        if row is not None:
            type(row).objects.filter(pk=row.pk, status="queued").update(sent_at=None, error=QUEUE_DOWN_MESSAGE)
        return False
    if row is not None:
        type(row).objects.filter(pk=row.pk).update(
            sent_at=timezone.now(),
            error=Case(
                When(error=QUEUE_DOWN_MESSAGE, then=Value("")), default=F("error"), output_field=models.TextField()
            ),
        )
    return True


def _health() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"pong": True, "host": socket.gethostname(), "pid": os.getpid(), "database": connection.vendor}


@shared_task(name="annotator.tasks.ping")
def ping() -> dict:
    return _health()


@shared_task(name="annotator.tasks.gpu_ping")
def gpu_ping() -> dict:
    """Runs on the ``gpu`` queue (by the ``gpu_`` route) and says which device the worker would train on."""
    result = _health()
    try:
        import torch

        result["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:  # a web-only install has no torch
        result["device"] = "unavailable"
    return result


# ignore_result: nobody reads the result, and recording it would make every send wait on the
# result backend too (with Redis down, its retries held a request for 19 s).
@shared_task(name="annotator.tasks.export_run", ignore_result=True)
def export_run(job_id: int) -> None:
    export_job_run(job_id=job_id)


@shared_task(name="annotator.tasks.exports_expire")
def exports_expire() -> int:
    """Old export files expire (EXPORT_KEEP_HOURS): for a periodic schedule (Celery beat or the sweep)."""
    return export_jobs_expire()
