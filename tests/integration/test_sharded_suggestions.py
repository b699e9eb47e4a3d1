"""Two real worker processes (bin/worker) on one Redis broker and one PostgreSQL database take the
shards of one probe run between them, and the suggestions equal those of a single worker's run."""

from __future__ import annotations


import pytest
from django.conf import settings as django_settings

from twinlabel.celery import app
from labeling import services
from labeling.models import ProjectModelState, RunKind, RunStatus, SuggestionShard, TrainingRun
from tests import procs
from tests.labeling.conftest import TINY, project  # noqa: F401  (the fixture)
from tests.labeling.test_suggesting import rows

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _wait(condition, timeout, what, *workers):
    value = procs.poll(condition, timeout)
    if value:
        return value
    runs = list(TrainingRun.objects.values("id", "kind", "status", "worker", "error"))
    logs = "\n".join(w.output[-3000:] for w in workers)
    raise AssertionError(f"timed out waiting for {what}; runs: {runs}\n{logs}")


def test_two_workers_share_the_shards_and_write_what_one_writes(
    project,  # noqa: F811  (the fixture imported above)
    settings,
    tmp_path,
    media_root,  # noqa: F811
    need,
):
    broker = django_settings.CELERY_BROKER_URL
    need(broker.startswith("redis://"), "a Redis broker (CELERY_BROKER_URL=redis://...)")
    need(django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), "PostgreSQL (DATABASE_URL)")
    settings.MODEL_DIR = tmp_path / "models"
    settings.SHARD_IMAGES = 4
    settings.SUGGEST_PARALLEL = False
    # The single-worker reference: pretraining and the first probe in this process, blocks in turn.
    app.conf.task_always_eager = True
    try:
        services.pretrain_start(project=project, config=TINY)
    finally:
        app.conf.task_always_eager = False
    single = ProjectModelState.objects.get(project=project).probe_run_id
    assert TrainingRun.objects.get(pk=single).status == RunStatus.SUCCEEDED
    expected = rows(single)
    blocks = SuggestionShard.objects.filter(run_id=single).count()
    assert blocks >= 8

    app.control.purge()
    env = procs.service_env(
        MEDIA_ROOT=str(media_root),
        MODEL_DIR=str(settings.MODEL_DIR),
        SHARD_IMAGES="4",
        SUGGEST_PARALLEL="1",
        RUN_STALE_SECONDS="600",
        WORKER_CONCURRENCY="1",
        CELERY_BROKER_URL=broker,
        WORKER_QUEUES="default",
    )
    with (
        procs.worker({**env, "WORKER_NAME": "one"}, queues="default") as one,
        procs.worker({**env, "WORKER_NAME": "two"}, queues="default") as two,
    ):
        settings.SUGGEST_PARALLEL = True
        run = services.probe_start(project=project)
        done = _wait(
            lambda: TrainingRun.objects.filter(pk=run.id, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]).first(),
            180,
            "the sharded probe run",
            one,
            two,
        )
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert ProjectModelState.objects.get(project=project).probe_run_id == run.id
    takers = set(SuggestionShard.objects.filter(run=run).values_list("worker", flat=True))
    assert SuggestionShard.objects.filter(run=run).count() == blocks
    assert {w.split("@")[0] for w in takers} == {"one", "two"}, takers
    assert rows(run.id) == expected
    assert TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).count() == 2
