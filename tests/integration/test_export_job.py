"""A big export through the real processes: the web server (bin/web) answers 202 and queues a job,
a real Celery worker (bin/worker) writes the file, and the download loads in pycocotools."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import redis
from pycocotools.coco import COCO
from rest_framework.authtoken.models import Token

from annotator.models import Box, Role
from tests import procs
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _redis_available() -> bool:
    try:
        return redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def _get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_big_export_is_written_by_a_worker_and_downloaded(need, settings, tmp_path, monkeypatch):
    need(_redis_available(), "Redis at 127.0.0.1:6379")
    monkeypatch.delenv("CELERY_RESULT_BACKEND", raising=False)
    project = make_project(labels=("cat", "dog"))
    ids = add_images(project, 3, size=(64, 48))
    cat = project.labels.get(name="cat")
    Box.objects.create(image_id=ids[0], label=cat, x=1, y=2, w=30, h=20)
    member, outsider = make_user("annie"), make_user("out")
    add_member(project, member, Role.ADMIN)  # exports are admin-only (issue 14 item 10)
    token, other = Token.objects.create(user=member).key, Token.objects.create(user=outsider).key
    broker = "redis://127.0.0.1:6379/5"
    env = procs.service_env(
        CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND=broker,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        EXPORT_STREAM_MAX_IMAGES="2",
        WEB_ACCESS_LOG="/dev/null",
    )
    with procs.worker(env, queues="default") as worker, procs.web(env) as (_, url):
        status, raw = _get(f"{url}/api/projects/{project.id}/export/?format=coco&status=all", token)
        assert status == 202, raw
        job = json.loads(raw)
        deadline = time.monotonic() + 60
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, worker.output[-4000:]
            time.sleep(0.3)
            job = json.loads(_get(url + job["url"], token)[1])
        assert job["status"] == "succeeded", job
        status, data = _get(url + job["download"], token)
        assert status == 200
        assert _get(url + job["download"], other)[0] == 404
    path = tmp_path / "coco.json"
    path.write_bytes(data)
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == 3 and [a["bbox"] for a in coco.loadAnns(coco.getAnnIds())] == [
        [1.0, 2.0, 30.0, 20.0]
    ]
