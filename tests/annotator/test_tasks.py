import pytest
from django.db import transaction

from annotator.tasks import enqueue, gpu_ping, ping


class RecordingTask:
    def __init__(self):
        self.sent = []

    def delay(self, *args, **kwargs):
        self.sent.append((args, kwargs))


@pytest.mark.django_db
def test_enqueue_sends_only_after_the_transaction_commits(django_capture_on_commit_callbacks):
    task = RecordingTask()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            enqueue(task, 7, kind="probe")
            assert task.sent == []
    assert len(callbacks) == 1 and task.sent == [((7,), {"kind": "probe"})]


@pytest.mark.django_db(transaction=True)
def test_enqueue_sends_nothing_when_the_transaction_rolls_back():
    task = RecordingTask()
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue(task, 1)
        raise RuntimeError("request failed")
    assert task.sent == []


def test_the_health_tasks_are_routed_by_name(settings):
    from twinlabel.celery import app

    router = app.amqp.router
    assert router.route({}, gpu_ping.name)["queue"].name == "gpu"
    assert router.route({}, ping.name)["queue"].name == "default"


@pytest.mark.django_db
def test_the_health_task_reaches_the_database():
    assert ping.run()["pong"] is True
