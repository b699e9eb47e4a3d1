"""Webhooks: register, remove, test, and turn the apps' events into deliveries sent after the commit.

A delivery is a row first (inside the event's own transaction nothing is written: the fan-out runs
after the commit), then a Celery task (tasks.py) that tries it (delivery.py) and retries with
exponential back-off.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotator.compiled import Compiled
from annotator.extensions import EVENTS
from annotator.models import Project
from annotator.tasks import send_now
from twinlabel.webhooks.delivery import Refused, address_check
from twinlabel.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from twinlabel.webhooks.tasks import webhook_deliver

TEST_EVENT = "ping"


# ---------------------------------------------------------------------------------------------
# Registration


def webhook_create(
    *, project: Project, user: AbstractBaseUser | None, url: str, events: list[str], secret: str = ""
) -> Webhook:
    unknown = sorted(set(events) - set(EVENTS))
    if not events or unknown:
        raise ValidationError(
            f"“events” must be some of {', '.join(EVENTS)}" + (f"; unknown: {', '.join(unknown)}." if unknown else ".")
        )
    try:
        address_check(url)
    except Refused as error:
        raise ValidationError(str(error)) from None
    if secret and len(secret) < 16:
        raise ValidationError("A secret needs at least 16 characters (or leave it out and one is made).")
    return Webhook.objects.create(
        project=project,
        url=url,
        events=sorted(set(events), key=EVENTS.index),
        secret=secret or secrets.token_hex(24),
        created_by=user if user is not None and user.is_authenticated else None,
    )


def webhook_test(*, webhook: Webhook) -> WebhookDelivery:
    """The "send test event" button: a ``ping`` delivered like any event, logged like any."""
    delivery = WebhookDelivery.objects.create(
        webhook=webhook, event=TEST_EVENT, payload=_envelope(webhook.project_id, TEST_EVENT, {"webhook_id": webhook.id})
    )
    _send_on_commit([delivery.id])
    return delivery


# ---------------------------------------------------------------------------------------------
# Events to deliveries


def event_noted(*, project_id: int, event: str, data: dict) -> None:
    """The extension point's listener: nothing in the writer's transaction; after its commit, one
    indexed read of the project's active webhooks, and the deliveries when there are some."""
    transaction.on_commit(lambda: deliveries_create(project_id=project_id, event=event, data=data))


def deliveries_create(*, project_id: int, event: str, data: dict) -> list[int]:
    hooks = [hook_id for hook_id, events in _ACTIVE_HOOKS.rows(project_id=project_id) if event in events]
    if not hooks:
        return []
    payload = _envelope(project_id, event, data)
    rows = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook_id=hook_id, event=event, payload=payload) for hook_id in hooks]
    )
    ids = [row.id for row in rows]
    _send_on_commit(ids)
    return ids


_ACTIVE_HOOKS = Compiled(  # after every submission's commit
    lambda project_id: Webhook.objects.filter(project_id=project_id, active=True).values_list("id", "events"),
    {"project_id": "int"},
)


def _envelope(project_id: int, event: str, data: dict) -> dict:
    return {"event": event, "project_id": project_id, "created_at": timezone.now().isoformat(), "data": data}


def _send_on_commit(ids: list[int]) -> None:
    # A broker that is down fails nothing here: the delivery stays pending and the sweep sends it again.
    transaction.on_commit(lambda: [send_now(webhook_deliver, delivery_id) for delivery_id in ids])


def deliveries_resend() -> list[int]:
    """The sweep's step (every worker, annotator/sweep.py): pending deliveries whose message was lost (a
    broker down at the send, or restarted empty): never tried after SWEEP_RESEND_SECONDS, or overdue for
    their next attempt by as long."""
    late = timezone.now() - timedelta(seconds=settings.SWEEP_RESEND_SECONDS)
    due = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .filter(Q(attempts=0, created_at__lt=late) | Q(next_attempt_at__lt=late))
        .values_list("id", flat=True)[:500]
    )
    return [delivery_id for delivery_id in due if send_now(webhook_deliver, delivery_id)]
