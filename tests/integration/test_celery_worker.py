"""A real Celery worker process (bin/worker, as docker-compose runs it) answers the health tasks,
on Redis and on the embedded filesystem broker, and routes ``gpu_*`` tasks to the gpu queue."""

from __future__ import annotations

import random

import pytest
import redis
from celery import Celery
from django.db import connection

from tests import procs

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_broker_from_environment(monkeypatch):
    # Celery lets CELERY_BROKER_URL in the environment override the broker a client app is given;
    # each test here picks its own broker (CI sets the variable for the rest of the suite).
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_RESULT_BACKEND", raising=False)


def _client(broker: str, backend: str, transport_options: dict | None = None) -> Celery:
    """A plain Celery client that sends by task name, routed as the settings route it."""
    # Not the current app: tasks of the code under test must keep using twinlabel.celery.app.
    app = Celery("test-client", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(
        broker_transport_options=transport_options or {},
        task_default_queue="default",
        task_routes={"*.gpu_*": {"queue": "gpu"}},
    )
    return app


def _get(result, service: procs.Service, timeout: float):
    """The task's result; on a time-out, the worker's own output says why."""
    try:
        return result.get(timeout=timeout)
    except Exception as error:
        raise AssertionError(f"{error!r}; worker output:\n{service.output[-6000:]}") from error


def _redis_available() -> bool:
    try:
        return redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def test_a_worker_on_redis_answers_both_queues(need):
    need(_redis_available(), "Redis at 127.0.0.1:6379")
    url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    env = procs.service_env(CELERY_BROKER_URL=url)
    client = _client(url, url)
    with procs.worker(env, queues="default,gpu") as service:
        result = _get(client.send_task("annotator.tasks.ping"), service, 30)
        gpu = _get(client.send_task("annotator.tasks.gpu_ping"), service, 60)
    assert result["pong"] is True and result["database"] == connection.vendor
    assert gpu["device"] in ("cpu",) or gpu["device"].startswith(("NVIDIA", "Tesla"))
    assert "annotator.tasks.gpu_ping" in service.output


def test_gpu_tasks_go_to_the_gpu_queue_only(need):
    need(_redis_available(), "Redis at 127.0.0.1:6379")
    url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    client = _client(url, url)
    with procs.worker(procs.service_env(CELERY_BROKER_URL=url), queues="gpu") as service:
        assert _get(client.send_task("annotator.tasks.gpu_ping"), service, 60)["pong"] is True
        pending = client.send_task("annotator.tasks.ping")  # default queue: this worker must not take it
        with pytest.raises(Exception, match="timed out|Timeout"):
            pending.get(timeout=4)
    redis.Redis.from_url(url).delete("default")


def test_a_worker_on_the_filesystem_broker_answers(tmp_path):
    # The embedded default: no Redis, messages and results as files under the var directory.
    var = tmp_path / "var"
    env = procs.service_env(TWINLABEL_VAR_DIR=str(var))
    env.pop("CELERY_BROKER_URL", None)
    queue, control = var / "broker" / "queue", var / "broker" / "control"
    for folder in (queue, control, var / "results"):
        folder.mkdir(parents=True, exist_ok=True)
    client = _client(
        "filesystem://",
        f"file://{var / 'results'}",
        {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(control),
            "store_processed": False,
        },
    )
    with procs.worker(env) as service:
        result = _get(client.send_task("annotator.tasks.ping"), service, 30)
    assert result["pong"] is True and result["database"] == connection.vendor
