"""Typed readers for environment variables. Each fails loudly on a value it cannot use:
a typo in production settings should stop the server at start, not surface as odd behaviour."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

Number = TypeVar("Number", int, float)


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")


def _env_number(name: str, parse: Callable[[str], Number], kind: str) -> Number | None:
    """The variable read by ``parse``, or None when it is unset or blank; text that is not a number
    stops the start with the variable's name."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    try:
        return parse(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not {kind}") from None


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    number = _env_number(name, int, "an integer")
    if number is None:
        return default
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below its minimum of {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    number = _env_number(name, float, "a number")
    if number is None:
        return default
    if not minimum <= number <= maximum:  # also refuses nan
        raise ImproperlyConfigured(f"{name}={number} is outside {minimum} to {maximum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_credentials(name: str) -> dict[str, tuple[str, str]]:
    """``name=KEY_ID:SECRET;other=KEY_ID:SECRET`` -> {name: (key id, secret)}; a malformed entry fails
    loudly at start, without echoing the secret."""
    out: dict[str, tuple[str, str]] = {}
    for n, entry in enumerate((os.environ.get(name) or "").split(";")):
        if not entry.strip():
            continue
        label, _, keys = entry.strip().partition("=")
        key_id, _, secret = keys.partition(":")
        if not (label.strip() and key_id and secret):
            raise ImproperlyConfigured(f"{name}: entry #{n + 1} is not name=ACCESS_KEY_ID:SECRET")
        out[label.strip()] = (key_id, secret)
    return out
