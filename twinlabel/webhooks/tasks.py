"""The webhook delivery task: one attempt per run, retried by Celery with exponential back-off."""

from __future__ import annotations

from celery import shared_task

from twinlabel.webhooks.delivery import delivery_attempt


@shared_task(bind=True, name="twinlabel.webhooks.tasks.webhook_deliver", ignore_result=True, max_retries=None)
def webhook_deliver(self, delivery_id: int) -> None:
    delay = delivery_attempt(delivery_id=delivery_id)
    if delay is not None:  # the row counts the attempts and decides when to stop
        raise self.retry(countdown=delay)
