"""One delivery attempt: sign, check the address (the SSRF guard), POST, log. No Celery here: the task
(tasks.py) calls ``delivery_attempt`` and retries after the delay it returns.

Signed like Stripe's webhooks: ``X-Twinlabel-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the webhook's secret>``; a receiver recomputes it and rejects old timestamps. A URL
whose host resolves to a loopback, private, link-local or otherwise non-global address is refused, at
registration and again at every attempt, and the connection goes to the address that was checked (a
name cannot resolve elsewhere in between), unless WEBHOOKS_ALLOW_PRIVATE.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from twinlabel.webhooks.models import DeliveryStatus, WebhookDelivery

SIGNATURE_HEADER = "X-Twinlabel-Signature"


class Refused(Exception):
    """The URL may not be called from here (SSRF guard); the message says why."""


# ---------------------------------------------------------------------------------------------
# One attempt


def retry_delay(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: WEBHOOK_RETRY_BASE_S doubled after every failure."""
    return min(settings.WEBHOOK_RETRY_BASE_S * 2 ** (attempt - 1), settings.WEBHOOK_RETRY_MAX_S)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def delivery_attempt(*, delivery_id: int) -> float | None:
    """Try a pending delivery once and log it; -> seconds to wait before the next attempt, or None
    when it is done (delivered, out of attempts, refused, or not pending: a duplicate message)."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    hook = delivery.webhook
    body = json.dumps({"id": delivery.id, **delivery.payload}, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Twinlabel-Webhooks/1",
        "X-Twinlabel-Event": delivery.event,
        "X-Twinlabel-Delivery": str(delivery.id),
        SIGNATURE_HEADER: sign(hook.secret, int(time.time()), body),
    }
    start, status, error, refused = time.perf_counter(), None, "", False
    try:
        status = post(hook.url, body, headers, timeout=settings.WEBHOOK_TIMEOUT_S)
        if not 200 <= status < 300:
            error = f"answered {status}"
    except Refused as why:
        error, refused = str(why), True
    except (OSError, http.client.HTTPException) as why:
        error = f"{type(why).__name__}: {why}"[:500]
    ms = round((time.perf_counter() - start) * 1000, 2)
    attempt = delivery.attempts + 1
    now = timezone.now()
    done = not error
    give_up = refused or attempt >= settings.WEBHOOK_MAX_ATTEMPTS
    delay = None if done or give_up else retry_delay(attempt)
    WebhookDelivery.objects.filter(pk=delivery.id, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.DELIVERED if done else DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING,
        attempts=attempt,
        response_status=status,
        response_ms=ms,
        error=error,
        last_attempt_at=now,
        delivered_at=now if done else None,
        next_attempt_at=now + timedelta(seconds=delay) if delay is not None else None,
        history=[*delivery.history, {"at": now.isoformat(), "status": status, "ms": ms, "error": error}],
    )
    return delay


# ---------------------------------------------------------------------------------------------
# The SSRF guard and the POST


def address_check(url: str) -> tuple[str, int, str]:
    """-> (host, port, the address to connect to); Refused when the URL may not be called."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("A webhook URL must be http:// or https:// with a host name.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError) as error:
        raise Refused(f"{parts.hostname} cannot be resolved ({error}).") from None
    addresses = [info[4][0] for info in infos]
    if not settings.WEBHOOKS_ALLOW_PRIVATE:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            mapped = getattr(ip, "ipv4_mapped", None)
            if not (mapped or ip).is_global or (mapped or ip).is_multicast:
                raise Refused(
                    f"{parts.hostname} resolves to {address}, a loopback, private or reserved address: webhooks may "
                    "not call into the server's own network (WEBHOOKS_ALLOW_PRIVATE=1 allows it)."
                )
    return parts.hostname, port, addresses[0]


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to the address that was checked, with the certificate checked against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """POST once, no redirects followed, no proxies; -> the response status."""
    host, port, address = address_check(url)
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = _PinnedHTTPS(host, port, address, timeout)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body, {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]})
        response = connection.getresponse()
        response.read(65536)
        return response.status
    finally:
        connection.close()
