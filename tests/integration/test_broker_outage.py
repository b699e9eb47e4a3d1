"""A broker outage fails no committed work (issue 14 item 4), through the real processes: the web
server (bin/web) and a Celery worker (bin/worker) on a private redis-server (never the shared one),
which is killed while requests queue work, then started again, empty. With no manual step, the
worker's sweep sends the queued run and export job again and they run.
bench/broker_outage.py measures the four moments of the issue with a real pretraining."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from rest_framework.authtoken.models import Token

from annotator.models import ExportJob
from annotator.tasks import QUEUE_DOWN_MESSAGE
from labeling.models import ProjectModelState, RunKind, RunStatus, TrainingRun
from tests import procs
from tests.factories import add_images, make_project, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _call(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict, float]:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Accept": "application/json", "Content-Type": "application/json"},
    )
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), time.monotonic() - start
    except urllib.error.HTTPError as error:
        return error.code, {"raw": error.read()[:500].decode(errors="replace")}, time.monotonic() - start


def _wait(condition, timeout: float, what: str, *services):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    runs = list(TrainingRun.objects.values("id", "kind", "status", "attempts", "error"))
    raise AssertionError(f"{what} not within {timeout}s; runs {runs}\n" + "\n".join(s.output[-3000:] for s in services))


def test_work_queued_while_redis_is_down_runs_when_it_is_back(settings, monkeypatch):
    monkeypatch.delenv("CELERY_RESULT_BACKEND", raising=False)
    owner = make_user("owner")
    project = make_project(owner=owner)
    add_images(project, 2)
    # A backbone without embeddings: the probe fit is claimed (what we measure), then fails quickly.
    backbone = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=project, pretrain_run=backbone)
    token = Token.objects.create(user=owner).key
    with procs.private_redis() as redis:
        env = procs.service_env(
            CELERY_BROKER_URL=redis.url,
            CELERY_RESULT_BACKEND=redis.url,
            SWEEP_SECONDS="1",
            MEDIA_ROOT=str(settings.MEDIA_ROOT),
            WEB_ACCESS_LOG="/dev/null",
        )
        with procs.worker(env, queues="default,gpu") as worker, procs.web(env) as (web, url):
            redis.kill()
            status, run, run_s = _call("POST", f"{url}/api/projects/{project.id}/runs/", token, {"kind": "probe"})
            assert status == 201, run
            assert run["status"] == "queued" and run["error"] == QUEUE_DOWN_MESSAGE
            status, job, job_s = _call(
                "GET", f"{url}/api/projects/{project.id}/export/?format=coco&background=1", token
            )
            assert status == 202, job
            assert job["status"] == "queued" and job["error"] == QUEUE_DOWN_MESSAGE
            assert run_s < 5 and job_s < 5, (run_s, job_s)  # was 19 s, then a 500
            time.sleep(3)
            assert TrainingRun.objects.get(pk=run["id"]).status == RunStatus.QUEUED
            redis.start()
            _wait(
                lambda: ExportJob.objects.filter(pk=job["id"], status="succeeded").exists(),
                90,
                "the export job",
                worker,
                web,
            )
            _wait(
                lambda: TrainingRun.objects.filter(pk=run["id"], attempts=1).exclude(status="queued").exists(),
                90,
                "the probe fit's claim",
                worker,
            )
    assert ExportJob.objects.get(pk=job["id"]).error == ""
    assert "sent" in worker.output or "sweep" in worker.output
