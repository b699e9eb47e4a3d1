"""Celery tasks: thin glue. Ids in; the work is in ``labeling.pipeline``.

acks_late + reject_on_worker_lost: a message is acknowledged only when its task has finished,
so a worker killed mid-run leaves it to be delivered again, and the run's claim (a heartbeat
that goes stale) lets the next worker take it over from the last checkpoint.
"""

from __future__ import annotations

from celery import shared_task

from labeling import pipeline, shards

LONG = {"acks_late": True, "reject_on_worker_lost": True, "bind": True}


@shared_task(name="labeling.tasks.gpu_pretrain", time_limit=7 * 24 * 3600, **LONG)
def gpu_pretrain(self, run_id: int) -> str:
    return pipeline.run_pretrain(run_id, self.request.hostname)


@shared_task(name="labeling.tasks.fit_probe", time_limit=4 * 3600, **LONG)
def fit_probe(self, run_id: int) -> str:
    return pipeline.run_probe(run_id, self.request.hostname)


@shared_task(name="labeling.tasks.suggest_shard", time_limit=4 * 3600, **LONG)
def suggest_shard(self, run_id: int, block: int) -> str:
    return shards.suggest_block(run_id, block, pipeline.worker_id(self.request.hostname))


@shared_task(name="labeling.tasks.suggest_finish", time_limit=3600, **LONG)
def suggest_finish(self, run_id: int) -> str:
    return shards.finalise(run_id)
