"""Celery tasks, and the only place that sends model-assistance work.

Tasks are thin: ids in, the work is in ``labeling.pretraining``, ``labeling.suggesting`` and
``labeling.detection``. Those
never import this module; where a step queues more work (the probe fit after a pretraining, the
shards of a probe run) the task hands them the sending function.

acks_late + reject_on_worker_lost: a message is acknowledged only when its task has finished,
so a worker killed mid-run leaves it to be delivered again, and the run's claim (a heartbeat
that goes stale) lets the next worker take it over from the last checkpoint.
"""

from __future__ import annotations

import logging

from celery import shared_task

from annotator.tasks import enqueue, send_now
from labeling import detection, pretraining, suggesting
from labeling.models import RunKind, TrainingRun
from labeling.runs import orphans_requeue, worker_id

log = logging.getLogger(__name__)

# ignore_result: nobody reads these results (progress and outcome are on the run's row), and
# recording them would make every send wait on the result backend too.
LONG = {"acks_late": True, "reject_on_worker_lost": True, "bind": True, "ignore_result": True}
# A paused run's message is due this many seconds after it is sent (run_send_later).
RESUME_AFTER_S = 5


@shared_task(name="labeling.tasks.gpu_pretrain", time_limit=7 * 24 * 3600, **LONG)
def gpu_pretrain(self, run_id: int) -> str:
    return pretraining.run_pretrain(
        run_id, self.request.hostname, send=run_enqueue, curate=curation_send, send_later=run_send_later
    )


@shared_task(name="labeling.tasks.curate", time_limit=4 * 3600, **LONG)
def curate(self, run_id: int) -> str:
    return pretraining.curation_run(run_id)


@shared_task(name="labeling.tasks.gpu_detector", time_limit=24 * 3600, **LONG)
def gpu_detector(self, run_id: int) -> str:
    return detection.run_detector(run_id, self.request.hostname, send_later=run_send_later)


@shared_task(name="labeling.tasks.fit_probe", time_limit=4 * 3600, **LONG)
def fit_probe(self, run_id: int) -> str:
    return suggesting.run_probe(run_id, self.request.hostname, send_shard=shard_send, send=run_enqueue)


@shared_task(name="labeling.tasks.suggest_shard", time_limit=4 * 3600, **LONG)
def suggest_shard(self, run_id: int, block: int) -> str:
    done = suggesting.suggest_block(run_id, block, worker_id(self.request.hostname))
    if suggesting.finish_if_complete(run_id) == "succeeded":
        suggesting.probe_follow(run_id, run_enqueue)
    return done


@shared_task(name="labeling.tasks.suggest_finish", time_limit=3600, **LONG)
def suggest_finish(self, run_id: int) -> str:
    # The chord callback of earlier versions, kept for messages still queued when they upgrade.
    status = suggesting.finalise(run_id)
    if status == "succeeded":
        suggesting.probe_follow(run_id, run_enqueue)
    return status


# ---------------------------------------------------------------------------------------------
# Sending


def _task_of(run: TrainingRun):
    return {RunKind.PRETRAIN: gpu_pretrain, RunKind.DETECTOR: gpu_detector}.get(run.kind, fit_probe)


def run_enqueue(run: TrainingRun) -> None:
    """Send a queued run's task once the current transaction commits (annotator.tasks.enqueue)."""
    enqueue(_task_of(run), run.id, row=run)


def run_send(run: TrainingRun) -> bool:
    """Send a queued run's task now; False when the broker is down (the sweep tries again)."""
    return send_now(_task_of(run), run.id, row=run)


def run_send_later(run: TrainingRun) -> None:
    """Send a run that paused for the runs waiting (labeling.runs.paused) to the back of the queue, due
    RESUME_AFTER_S from now: a worker holds a message that is not due yet aside and takes the next
    one, so the runs that were waiting go first whatever order the broker serves its queues in."""
    send_now(_task_of(run), run.id, row=run, options={"countdown": RESUME_AFTER_S})


def curation_send(run: TrainingRun) -> None:
    """A pretraining's rankings (labeling.pretraining.curation_write) as their own task, sent after
    the probe fit that the run queued, so a worker takes the fit first and the first suggestions
    do not wait for them; with the broker down, they are made here and now."""
    if not send_now(curate, run.id):
        pretraining.curation_write(run)


def shard_send(run_id: int, block: int) -> bool:
    """One block of a probe run to any worker; False when the broker did not take it."""
    return send_now(suggest_shard, run_id, block)


def resume_orphans(node: str) -> list[int]:
    """At worker start: queue again and send the runs this node (or a quiet one) left behind."""
    resumed = []
    for run in orphans_requeue(node):
        run_send(run)  # with the broker down, the sweep sends it again
        resumed.append(run.id)
    if resumed:
        log.warning("re-queued training runs %s after a worker was lost", resumed)
    return resumed
