"""Queueing helpers and health tasks: the cheapest proof that a worker is up, reads its queue and
reaches the database."""

from __future__ import annotations

import os
import socket

from celery import Task, shared_task
from django.db import connection, transaction


def enqueue(task: Task, *args, **kwargs) -> None:
    """Send ``task`` once the current transaction commits, so a worker never reads rows that
    are not there yet, and a rolled-back request sends nothing. Pass ids, never model objects."""
    transaction.on_commit(lambda: task.delay(*args, **kwargs))


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


@shared_task(name="annotator.tasks.export_run")
def export_run(job_id: int) -> None:
    from annotator.exchange import export_job_run

    export_job_run(job_id=job_id)


@shared_task(name="annotator.tasks.exports_expire")
def exports_expire() -> int:
    """Old export files expire (EXPORT_KEEP_HOURS): for a periodic schedule (Celery beat or the sweep)."""
    from annotator.exchange import export_jobs_expire

    return export_jobs_expire()
