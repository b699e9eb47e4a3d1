"""A delivery through a real Celery worker (bin/worker, the filesystem broker): the event's fan-out
after a committed write, the receiver answering 500 then 200, the retry sent back through the broker
with its countdown; the log shows both attempts."""

import time

import pytest

from tests import procs
from tests.factories import make_project, make_user
from tests.webhooks.receiver import Receiver
from twinlabel.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from twinlabel.webhooks.services import deliveries_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SECRET = "a-shared-secret-of-the-team"


def test_a_real_worker_delivers_and_retries_after_a_500(media_root, tmp_path, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    project = make_project(owner=make_user("owner"))
    env = procs.worker_env(
        "hooks", media_root, tmp_path / "models", WEBHOOKS_ALLOW_PRIVATE="1", WEBHOOK_RETRY_BASE_S="1"
    )
    with Receiver(SECRET, statuses=[500, 200]) as receiver:
        Webhook.objects.create(project=project, url=receiver.url, events=["run.finished"], secret=SECRET)
        with procs.worker(env) as worker:
            start = time.time()
            [delivery_id] = deliveries_create(project_id=project.id, event="run.finished", data={"run_id": 7})
            delivery = procs.poll(
                lambda: WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.DELIVERED).first(), 60
            )
            assert delivery, worker.output[-3000:]
    assert [h["status"] for h in delivery.history] == [500, 200] and delivery.attempts == 2
    assert [r["valid"] for r in receiver.received] == [True, True]
    first, second = (r["at"] - start for r in receiver.received)
    assert second - first >= 0.9  # the countdown (WEBHOOK_RETRY_BASE_S) was kept
