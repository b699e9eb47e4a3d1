"""Webhook delivery latency to a receiver on this machine, and the retry schedule while it is down.

    python -m bench.webhook_latency [--deliveries 300] [--down 30]

Latency: an event's fan-out after its commit (the deliveries' rows) to the receiver having read the
signed body, with the delivery task run in this process (Celery eager: no broker pickup, which adds
the broker's latency: milliseconds on Redis, up to a second with the filesystem broker's polling);
also the attempt's own POST time as logged (response_ms). Retry schedule: the receiver's port is
closed for ``--down`` seconds; the delivery is attempted, and re-attempted after each delay the
attempt returns (what the Celery task's countdown does), until the receiver is back.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, int_options, machine_load, write_result

    args = int_options(deliveries=300, down=30).parse_args()
    load = os.getloadavg()
    django_setup(WEBHOOKS_ALLOW_PRIVATE="1", WEBHOOK_RETRY_BASE_S="2")
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotator.services.projects import project_create
    from tests.webhooks.receiver import Receiver
    from twinlabel.celery import app
    from twinlabel.webhooks.delivery import delivery_attempt
    from twinlabel.webhooks.models import Webhook, WebhookDelivery
    from twinlabel.webhooks.services import deliveries_create

    app.conf.task_always_eager = True
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
    project = project_create(name=f"bench-hooks-{time.time_ns()}", user=user, labels=["cat"])
    secret = "bench-secret-0123456789"
    latencies = []
    with Receiver(secret) as receiver:
        Webhook.objects.create(project=project, url=receiver.url, events=["image.submitted"], secret=secret)
        for i in range(args.deliveries):
            start = time.time()
            with transaction.atomic():
                deliveries_create(project_id=project.id, event="image.submitted", data={"image_id": i})
            latencies.append((receiver.received[-1]["at"] - start) * 1000)
        assert len(receiver.received) == args.deliveries and all(r["valid"] for r in receiver.received)
    posts = list(WebhookDelivery.objects.filter(event="image.submitted").values_list("response_ms", flat=True))
    p = lambda xs, q: round(float(np.percentile(xs, q)), 2)  # noqa: E731

    # The receiver down for --down seconds: a port nobody listens on, then a receiver on it.
    with Receiver(secret) as probe:
        port = probe.server.server_address[1]
    hook = Webhook.objects.create(
        project=project, url=f"http://127.0.0.1:{port}/hook", events=["run.finished"], secret=secret
    )
    delivery = WebhookDelivery.objects.create(webhook=hook, event="run.finished", payload={"event": "run.finished"})
    t0 = time.time()
    back: list[Receiver] = []

    def come_back() -> None:
        time.sleep(args.down)
        back.append(Receiver(secret, port=port).__enter__())

    threading.Thread(target=come_back, daemon=True).start()
    attempts = []
    while True:
        delay = delivery_attempt(delivery_id=delivery.id)
        attempts.append(round(time.time() - t0, 2))
        if delay is None:
            break
        time.sleep(delay)
    delivery.refresh_from_db()
    if back:
        back[-1].__exit__()
    figures = {
        "deliveries": args.deliveries,
        "event_to_received_ms": {"p50": p(latencies, 50), "p95": p(latencies, 95), "max": p(latencies, 99.9)},
        "post_ms": {"p50": p(posts, 50), "p95": p(posts, 95)},
        "down_s": args.down,
        "retry_attempts_at_s": attempts,
        "retry_errors": [h["error"] for h in delivery.history],
        "final_status": delivery.status,
        "delivered_after_s": attempts[-1],
        "load": machine_load(load),
    }
    print(
        f"webhook latency, event to receiver ({args.deliveries} deliveries, in-process task): p50 "
        f"{figures['event_to_received_ms']['p50']} ms, p95 {figures['event_to_received_ms']['p95']} ms; POST alone p50 "
        f"{figures['post_ms']['p50']} ms, p95 {figures['post_ms']['p95']} ms. Receiver down {args.down} s: attempts at "
        f"{attempts} s, {delivery.status} after {attempts[-1]} s; load {figures['load']}; "
        f"statistics median {statistics.median(latencies):.2f} ms"
    )
    write_result("webhook_latency", figures)


if __name__ == "__main__":
    main()
