"""Celery tasks: thin glue. Ids in; the work is in ``labeling.pipeline``.

acks_late + reject_on_worker_lost: a message is acknowledged only when its task has finished,
so a worker killed mid-run leaves it to be delivered again, and the run's claim (a heartbeat
that goes stale) lets the next worker take it over from the last checkpoint.
"""

from __future__ import annotations

from celery import shared_task

from labeling import pipeline, shards

# ignore_result: nobody reads these results (progress and outcome are on the run's row), and
# recording them would make every send wait on the result backend too.
LONG = {"acks_late": True, "reject_on_worker_lost": True, "bind": True, "ignore_result": True}


@shared_task(name="labeling.tasks.gpu_pretrain", time_limit=7 * 24 * 3600, **LONG)
def gpu_pretrain(self, run_id: int) -> str:
    return pipeline.run_pretrain(run_id, self.request.hostname)


@shared_task(name="labeling.tasks.fit_probe", time_limit=4 * 3600, **LONG)
def fit_probe(self, run_id: int) -> str:
    return pipeline.run_probe(run_id, self.request.hostname)


@shared_task(name="labeling.tasks.suggest_shard", time_limit=4 * 3600, **LONG)
def suggest_shard(self, run_id: int, block: int) -> str:
    done = shards.suggest_block(run_id, block, pipeline.worker_id(self.request.hostname))
    shards.finish_if_complete(run_id)
    return done


@shared_task(name="labeling.tasks.suggest_finish", time_limit=3600, **LONG)
def suggest_finish(self, run_id: int) -> str:
    # The chord callback of earlier versions, kept for messages still queued when they upgrade.
    return shards.finalise(run_id)
