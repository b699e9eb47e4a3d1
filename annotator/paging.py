"""One cursor-pagination style for every list: keyset pages. A page is the rows after a key in a
fixed order (never OFFSET, so page 1,000 costs what page 1 does), and the key of its last row when
more follow. The API turns keys into opaque cursors (twinlabel/web/api/common.py); the image grid
page passes the id as ``after`` / ``before``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_key: tuple | None  # pass as ``after`` for the next page; None on the last page


def keyset_after(keys: tuple[str, ...], values: tuple) -> Q:
    """The rows after ``values`` in the order ``keys`` (order_by fields, "-" for descending):
    (a > x) or (a = x and b > y) ..., which an index on the keys answers with one range scan."""
    condition, equal = Q(), {}
    for key, value in zip(keys, values, strict=True):
        field = key.lstrip("-")
        condition |= Q(**equal, **{f"{field}__{'lt' if key.startswith('-') else 'gt'}": value})
        equal[field] = value
    return condition


def keyset_page(
    rows: QuerySet, keys: tuple[str, ...], *, after: tuple | None, limit: int, fields: tuple[str, ...]
) -> Page:
    """One page of ``rows`` (already ordered by ``keys``) as dicts of ``fields``: one query, limit + 1
    rows to learn whether another page follows."""
    if after is not None:
        rows = rows.filter(keyset_after(keys, after))
    found = list(rows.values(*fields)[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return Page(found, tuple(found[-1][key.lstrip("-")] for key in keys) if more else None)
