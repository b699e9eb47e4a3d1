"""Failed-login throttle, by user name and by client address, for the login page, the Django admin
and token authentication alike. Counts live in Django's cache (Redis on a team server, files under
var/ embedded, so every web process sees the same counts) for LOGIN_THROTTLE_MINUTES.

When the cache is unreachable (Redis down: the same outage the broker survives, issue 14 item 4)
the throttle fails open, with a warning in the log: logins and token requests go on unthrottled
rather than every request answering 500. The passwords are still checked; only the counting stops."""

from __future__ import annotations

import functools
import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

log = logging.getLogger(__name__)

THROTTLED_MESSAGE = "Too many failed logins from this address or for this user; try again in {minutes} minutes."


def client_address(request: HttpRequest | None) -> str:
    # REMOTE_ADDR: behind a reverse proxy this is the proxy, which then throttles everyone behind it
    # together; X-Forwarded-For is not trusted since any client can send it.
    return (request.META.get("REMOTE_ADDR") if request is not None else None) or "unknown"


def _key(kind: str, value: str) -> str:
    return "login-fail:" + kind + ":" + hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


def _keys(*, username: str | None, address: str) -> list[tuple[str, int]]:
    keys = [(_key("addr", address), settings.LOGIN_FAILURES_PER_ADDRESS)]
    if username:
        keys.append((_key("user", username), settings.LOGIN_FAILURES_PER_USER))
    return keys


def _fail_open(default):
    def wrap(fn):
        @functools.wraps(fn)
        def safe(**kwargs):
            try:
                return fn(**kwargs)
            except Exception as error:  # the cache's client errors (redis.ConnectionError, time-outs, OSError)
                log.warning("login throttle: the cache is unreachable (%s); not counting", error)
                return default

        return safe

    return wrap


@_fail_open(False)
def login_blocked(*, username: str | None, address: str) -> bool:
    counts = cache.get_many([key for key, _ in _keys(username=username, address=address)])
    return any(counts.get(key, 0) >= limit for key, limit in _keys(username=username, address=address))


@_fail_open(None)
def login_failed(*, username: str | None, address: str) -> None:
    timeout = settings.LOGIN_THROTTLE_MINUTES * 60
    for key, _ in _keys(username=username, address=address):
        if not cache.add(key, 1, timeout):  # the window starts at the first failure
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout)


@_fail_open(None)
def login_succeeded(*, username: str) -> None:
    cache.delete(_key("user", username))


def throttled_message() -> str:
    return THROTTLED_MESSAGE.format(minutes=settings.LOGIN_THROTTLE_MINUTES)
