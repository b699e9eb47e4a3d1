"""A training run's life on a worker, and the project's current runs.

Claiming is one conditional UPDATE: a run is taken when it is queued, or when the worker that
held it has gone quiet (its heartbeat is stale). A worker that lost its claim finds out when its
writes match no row, and stops. Everything a run writes is keyed by the run, so running it twice
(after a crash, or a duplicate message) replaces its own partial output and changes nothing else.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotator.models import Project
from labeling.ml.files import disk_full
from labeling.models import ProjectModelState, RunKind, RunStatus, TrainingRun

log = logging.getLogger(__name__)
# The last line of a run that failed for lack of disk space (labeling/ml/files.py removed the partial
# file; the files it wrote before are whole).
DISK_FULL_ERROR = (
    "The server ran out of disk space while this run wrote its files; nothing it had saved before is lost. "
    "Free some space (or ask the administrator to), then retry the run."
)

WAITING_CHECK_S = 5.0  # how often a session past its slice asks whether other runs wait


# ---------------------------------------------------------------------------------------------
# The project's current runs: the one place these are looked up


def current_probe_run_id(*, project_id: int) -> int | None:
    """The probe run whose suggestions people see now (swapped in whole by ``suggesting.finalise``)."""
    return ProjectModelState.objects.filter(project_id=project_id).values_list("probe_run_id", flat=True).first()


def current_detector_run_id(*, project_id: int) -> int | None:
    """The detector run whose box suggestions people see now (swapped in whole by ``detection._finalise``)."""
    return ProjectModelState.objects.filter(project_id=project_id).values_list("detector_run_id", flat=True).first()


def current_backbone_run_id(*, project_id: int) -> int | None:
    """The pretraining run whose embeddings the next probe fits on."""
    return ProjectModelState.objects.filter(project_id=project_id).values_list("pretrain_run_id", flat=True).first()


def probe_create(*, project: Project, backbone_run_id: int, user=None, finetune: bool = False) -> TrainingRun | None:
    """A queued probe fit on ``backbone_run_id`` (the caller sends it, on commit); None when one of
    its stage is already queued or running (the database's constraint), which will see these labels
    too. ``finetune``: the second stage of a refit (labeling.suggesting.probe_follow), which leaves
    the count of submissions since the fit to the first; a first stage may be queued beside it."""
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                project=project,
                kind=RunKind.PROBE,
                created_by=user,
                backbone_run_id=backbone_run_id,
                finetune_stage=finetune,
            )
            if not finetune:
                ProjectModelState.objects.filter(project=project).update(submissions_since_fit=0)
    except IntegrityError:
        return None
    return run


# ---------------------------------------------------------------------------------------------
# Sharing the worker: a long training session pauses for the runs that wait


def others_waiting(*, run_id: int) -> bool:
    """Whether other runs wait for a worker: a queued one, or a running probe run (with one worker
    process, one that is not running here has its suggestion shards queued)."""
    waiting = Q(status=RunStatus.QUEUED, cancel_requested=False) | Q(status=RunStatus.RUNNING, kind=RunKind.PROBE)
    return TrainingRun.objects.filter(waiting).exclude(pk=run_id).exists()


def pause_check(run_id: int, send_later: Callable[[TrainingRun], object] | None) -> Callable[[], bool] | None:
    """A training session's ``should_yield`` for the run: None (never pause) without a way to send it
    again, else ``yield_check`` with TRAINING_SLICE_S."""
    return None if send_later is None else yield_check(run_id, settings.TRAINING_SLICE_S)


def yield_check(run_id: int, slice_s: float, clock: Callable[[], float] = time.monotonic) -> Callable[[], bool]:
    """A training session's ``should_yield``: True once it has run ``slice_s`` seconds (0: never) and
    other runs wait for the worker (the database is asked at most every WAITING_CHECK_S)."""
    start, asked_at, answer = clock(), -math.inf, False

    def should_yield() -> bool:
        nonlocal asked_at, answer
        now = clock()
        if not slice_s or now - start < slice_s:
            return False
        if now - asked_at >= WAITING_CHECK_S:
            asked_at, answer = now, others_waiting(run_id=run_id)
        return answer

    return should_yield


# ---------------------------------------------------------------------------------------------
# Claim, heartbeat, finish


def worker_id(node: str) -> str:
    return f"{node}:{os.getpid()}"


def claim(run_id: int, worker: str) -> TrainingRun | None:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.RUN_STALE_SECONDS)
    taken = (
        TrainingRun.objects.filter(pk=run_id)
        .filter(
            Q(status=RunStatus.QUEUED, cancel_requested=False) | Q(status=RunStatus.RUNNING, heartbeat_at__lt=stale)
        )
        .update(
            status=RunStatus.RUNNING,
            worker=worker,
            heartbeat_at=now,
            started_at=now,
            error="",
            attempts=F("attempts") + 1,
        )
    )
    return TrainingRun.objects.select_related("project").get(pk=run_id) if taken else None


class LostClaim(Exception):
    """Another worker took the run over (ours was presumed dead): stop without writing more."""


class RunMonitor:
    """While a run works: a heartbeat every few seconds, cancellation noticed, progress written."""

    def __init__(self, run: TrainingRun, interval: float = 5.0):
        self.run, self.interval = run, interval
        self.cancelled, self.lost, self._done = threading.Event(), threading.Event(), threading.Event()
        self.history: list[list[float]] = list(run.loss_history)
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"run-{run.id}-heartbeat")

    def __enter__(self) -> "RunMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set()

    def update(self, **fields) -> None:
        if not self._mine().update(heartbeat_at=timezone.now(), **json_safe_fields(fields)):
            self.lost.set()
            raise LostClaim(self.run.id)

    def progress(self, p) -> None:
        self.history.append([p.step, round(p.loss, 6)])
        eta = getattr(p, "eta_s", None)
        self.update(
            epoch=p.epoch,
            step=p.step,
            steps_per_epoch=p.steps_per_epoch,
            loss=p.loss,
            images_per_s=round(p.images_per_s, 2),
            loss_history=self.history,
            eta_at=None if eta is None else timezone.now() + timedelta(seconds=eta),
        )

    def _mine(self):
        return TrainingRun.objects.filter(pk=self.run.id, worker=self.run.worker, status=RunStatus.RUNNING)

    def _beat(self) -> None:
        try:
            while not self._done.wait(self.interval):
                if not self._mine().update(heartbeat_at=timezone.now()):
                    self.lost.set()
                    return
                if TrainingRun.objects.filter(pk=self.run.id, cancel_requested=True).exists():
                    self.cancelled.set()
        finally:
            connection.close()  # this thread's own connection


def run_claimed(run_id: int, node: str, work: Callable[[TrainingRun, RunMonitor], str]) -> str:
    """A worker's frame around any run: claim it (or return if another worker holds it), do
    ``work`` under its monitor, and record a crash as the run's failure, with the traceback."""
    run = claim(run_id, worker_id(node))
    if run is None:
        return "not claimed"
    try:
        with RunMonitor(run) as monitor:
            return work(run, monitor)
    except LostClaim:
        return "lost claim"
    except Exception as exc:
        log.exception("%s run %s failed", run.kind, run_id)
        error = traceback.format_exc()[-4000:]
        if disk_full(exc) is not None:  # the runs table shows an error's last line: this one says what to do
            error += DISK_FULL_ERROR
        finish(run, RunStatus.FAILED, error=error)
        return "failed"
    finally:
        close_old_connections()


def finish(run: TrainingRun, status: str, **fields) -> bool:
    done = bool(
        TrainingRun.objects.filter(pk=run.id, worker=run.worker, status=RunStatus.RUNNING).update(
            status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(), **json_safe_fields(fields)
        )
    )
    if done:
        run_finished_emit(run_id=run.id)
    return done


def paused(run: TrainingRun, where: str, send_later: Callable[[TrainingRun], object]) -> str:
    """Hand a running run back to the queue between two slices of its work, its checkpoint written at
    ``where`` ("step 120"), and send it again (``send_later``); claimed again, it resumes from there. A
    pause is not a failed attempt: the claim's count is given back. The run's outcome: "yielded"."""
    if not TrainingRun.objects.filter(pk=run.id, worker=run.worker, status=RunStatus.RUNNING).update(
        status=RunStatus.QUEUED,
        worker="",
        sent_at=None,
        eta_at=None,
        attempts=F("attempts") - 1,
        heartbeat_at=timezone.now(),
        error=f"Paused at {where} to let waiting runs go first; it resumes by itself after them.",
    ):
        raise LostClaim(run.id)
    send_later(run)
    return "yielded"


def run_finished_emit(*, run_id: int) -> None:
    """Tell the outside world (webhooks, annotator/extensions.py) that a run ended, with its headline metrics."""
    from annotator.extensions import event_emit

    run = TrainingRun.objects.filter(pk=run_id).values("project_id", "kind", "status", "metrics", "error").first()
    if run is None:
        return
    metrics = run["metrics"] or {}
    cv = metrics.get("cv") or {}
    headline = {k: cv.get(k) for k in ("map", "micro_f1", "macro_f1") if k in cv}
    headline.update({k: metrics[k] for k in ("labeled", "final_loss", "message", "model_version") if k in metrics})
    event_emit(
        project_id=run["project_id"],
        event="run.finished",
        data={
            "run_id": run_id,
            "kind": run["kind"],
            "status": run["status"],
            "metrics": headline,
            "error": run["error"][-500:],
        },
    )


def json_safe_fields(fields: dict) -> dict:
    """A run's JSON columns as both databases accept them: SQLite's JSON_VALID and PostgreSQL
    refuse NaN and Infinity, so a non-finite number is stored as null (unknown); numpy scalars
    become plain numbers. Every write of run metrics goes through here."""
    return {k: json_safe(v) if k in ("metrics", "loss_history") else v for k, v in fields.items()}


def json_safe(value):
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def orphans_requeue(node: str) -> list[TrainingRun]:
    """At worker start: runs this node held died with its last process; queue them again, as well
    as runs whose worker went quiet and queued runs whose message may have been lost. Returns the
    queued runs to send (``labeling.tasks.resume_orphans`` sends them)."""
    stale = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    orphans = TrainingRun.objects.filter(
        Q(status=RunStatus.RUNNING, worker__startswith=f"{node}:")
        | Q(status=RunStatus.RUNNING, heartbeat_at__lt=stale)
        | Q(status=RunStatus.QUEUED, created_at__lt=stale, cancel_requested=False)
    )
    queued = []
    for run in orphans:
        if run.status == RunStatus.RUNNING and run.attempts >= settings.RUN_MAX_ATTEMPTS:
            # A run that takes its worker down every time (out of memory, say) must not loop forever.
            TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, worker=run.worker).update(
                status=RunStatus.FAILED,
                finished_at=timezone.now(),
                error=f"Its worker stopped during each of {run.attempts} attempts; retry it when the cause is fixed.",
            )
            continue
        if run.status == RunStatus.RUNNING:
            if not TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, worker=run.worker).update(
                status=RunStatus.QUEUED, worker=""
            ):
                continue
        queued.append(run)
    return queued
