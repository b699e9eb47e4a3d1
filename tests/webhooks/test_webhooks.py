"""Webhooks against a real receiver on 127.0.0.1 (tests/webhooks/receiver.py), which verifies the
signature with its own code; retries on 500 with back-off; the SSRF guard."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from twinlabel.celery import app
from twinlabel.webhooks import services
from twinlabel.webhooks.delivery import delivery_attempt, retry_delay, sign
from twinlabel.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.team(images=3), pytest.mark.django_db]

SECRET = "a-shared-secret-of-the-team"


@pytest.fixture
def eager(settings):
    """Deliveries run in this process (a Celery retry runs again at once, whatever its countdown)."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOK_RETRY_BASE_S = 0.01
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _hook(team, receiver, events=("image.submitted",)):
    return Webhook.objects.create(project=team.project, url=receiver.url, events=list(events), secret=SECRET)


def test_a_submission_is_delivered_after_the_commit_signed_and_logged(
    client, team, eager, django_capture_on_commit_callbacks
):
    with Receiver(SECRET) as receiver:
        hook = _hook(team, receiver)
        client.force_login(team.annotator)
        image = team.ids[0]
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = client.post(
                reverse("api_image_submit", args=[image]), {"version": 1}, content_type="application/json"
            )
        assert response.status_code == 200, response.content
        assert receiver.received == [] and len(callbacks) >= 1  # nothing sent before the commit
        with django_capture_on_commit_callbacks(execute=True):
            for callback in callbacks:
                callback()
        [got] = receiver.received
        assert got["valid"] and got["event"] == "image.submitted"
        assert got["body"]["data"]["image_id"] == image and got["body"]["project_id"] == team.project.id
        delivery = WebhookDelivery.objects.get(webhook=hook)
        assert got["body"]["id"] == delivery.id
        assert (
            delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1 and delivery.response_status == 200
        )
        assert delivery.response_ms > 0


def test_a_receiver_that_answers_500_gets_the_delivery_again(team, eager, django_capture_on_commit_callbacks):
    with Receiver(SECRET, statuses=[500, 500, 200]) as receiver:
        _hook(team, receiver, events=["run.finished"])
        with django_capture_on_commit_callbacks(execute=True):
            [delivery_id] = services.deliveries_create(
                project_id=team.project.id, event="run.finished", data={"run_id": 1}
            )
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        assert [h["status"] for h in delivery.history] == [500, 500, 200]
        assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3
        assert len(receiver.received) == 3 and all(r["valid"] for r in receiver.received)
        assert len({r["body"]["id"] for r in receiver.received}) == 1  # the same delivery, re-signed each time


def test_it_gives_up_after_the_last_attempt(team, eager, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    with Receiver(SECRET, statuses=[500] * 5) as receiver:
        _hook(team, receiver, events=["export.ready"])
        with django_capture_on_commit_callbacks(execute=True):
            [delivery_id] = services.deliveries_create(project_id=team.project.id, event="export.ready", data={})
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2 and len(receiver.received) == 2
    assert delivery.error == "answered 500"


def test_the_back_off_doubles_up_to_its_cap(settings):
    settings.WEBHOOK_RETRY_BASE_S, settings.WEBHOOK_RETRY_MAX_S = 2, 20
    assert [retry_delay(n) for n in range(1, 6)] == [2, 4, 8, 16, 20]


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"event":"ping"}'
    expected = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k" * 16, 1700000000, body) == f"t=1700000000,v1={expected}"


def test_only_subscribed_active_webhooks_get_an_event(team, eager, django_capture_on_commit_callbacks):
    with Receiver(SECRET) as receiver:
        _hook(team, receiver, events=["run.finished"])
        Webhook.objects.create(
            project=team.project, url=receiver.url, events=["image.submitted"], secret=SECRET, active=False
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert services.deliveries_create(project_id=team.project.id, event="image.submitted", data={}) == []
        assert receiver.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "ftp://example.com/",
    ],
)
def test_addresses_inside_the_servers_network_are_refused(team, url):
    with pytest.raises(ValidationError):
        services.webhook_create(project=team.project, user=team.owner, url=url, events=["run.finished"])
    assert not Webhook.objects.exists()


def test_a_delivery_to_a_private_address_is_refused_at_send_time_too(team, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    with Receiver(SECRET) as receiver:
        hook = _hook(team, receiver)  # e.g. registered while allowed, or a name that now resolves inside
        delivery = WebhookDelivery.objects.create(webhook=hook, event="ping", payload={"event": "ping"})
        assert delivery_attempt(delivery_id=delivery.id) is None
        assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "private" in delivery.error and delivery.attempts == 1


def test_the_api_registers_lists_tests_and_deletes(client, team, eager, django_capture_on_commit_callbacks):
    client.force_login(team.owner)
    url = reverse("api_project_webhooks", args=[team.project.id])
    with Receiver(SECRET) as receiver:
        created = client.post(url, {"url": receiver.url, "events": ["image.reviewed"]}, content_type="application/json")
        assert created.status_code == 201, created.content
        hook = created.json()
        assert len(hook["secret"]) >= 16 and "secret" not in client.get(url).json()[0]
        receiver.secret = hook["secret"].encode()
        with django_capture_on_commit_callbacks(execute=True):
            tested = client.post(reverse("api_webhook_test", args=[hook["id"]]))
        assert tested.status_code == 202
        [got] = receiver.received
        assert got["valid"] and got["event"] == "ping"
        log = client.get(reverse("api_webhook_deliveries", args=[hook["id"]])).json()
        assert log[0]["status"] == "delivered" and log[0]["response_status"] == 200
    bad = client.post(url, {"url": "http://hooks.example/", "events": ["nope"]}, content_type="application/json")
    assert bad.status_code == 400
    assert client.delete(reverse("api_webhook", args=[hook["id"]])).status_code == 204
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()


def test_an_external_predictions_import_announces_the_run_and_the_new_suggestions(
    team, eager, django_capture_on_commit_callbacks
):
    from labeling.external import predictions_import

    with Receiver(SECRET) as receiver:
        _hook(team, receiver, events=["run.finished", "suggestions.refreshed"])
        doc = {"model_version": "v1", "predictions": [{"image_id": i, "tags": {"cat": 0.7}} for i in team.ids]}
        with django_capture_on_commit_callbacks(execute=True):
            report = predictions_import(
                project=team.project, user=team.owner, fmt="json", files=[("p.json", json.dumps(doc).encode())]
            )
        events = {r["event"]: r["body"]["data"] for r in receiver.received}
        assert events["run.finished"]["run_id"] == report.run_id and events["run.finished"]["kind"] == "external"
        assert events["suggestions.refreshed"]["suggestions"] == 3
