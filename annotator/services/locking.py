"""The shared write helpers: the versioned write every annotation and review verdict goes through,
the queue's row pick (SKIP LOCKED) and its hold's expiry."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotator.compiled import row_update
from annotator.models import Image
from annotator.services.status_counts import status_counts_move


class StaleVersion(Exception):
    """The client's version is not the image's current one; ``image_id`` says which to re-read."""

    def __init__(self, image_id: int):
        super().__init__(image_id)
        self.image_id = image_id


def bump_version(image: Image, version: int, **changes) -> None:
    """The versioned write (StaleVersion when ``version`` is not the row's); ``image`` then holds what
    was written (callers answer with it, no re-read)."""
    where = {"pk": image.pk, "version": version}
    # No savepoint when nested (it cost two round trips per save): nothing in this block raises on a
    # stale version, so a caller's transaction that goes on to read the current state for its 409
    # (tests/annotator/test_api_rest.py) is never marked for rollback; StaleVersion is raised after it.
    with transaction.atomic(savepoint=False):
        # A status change moves the project's counters from the status the row has now. The queue
        # changes status without a version bump, so the caller's copy may be old: the write first
        # assumes the status the caller read (one UPDATE, which PostgreSQL re-checks on the locked
        # row), and only when that misses reads the row's status under a lock.
        if "status" in changes:
            old = image.status
            written = row_update(Image, {**where, "status": old}, changes, increment=("version",))
            if not written:
                row = Image.objects.filter(**where).select_for_update()
                old = row.values_list("status", flat=True).first()
                written = old is not None and row_update(Image, where, changes, increment=("version",))
            if written:
                status_counts_move(project_id=image.project_id, old=old, new=changes["status"])
        else:
            written = row_update(Image, where, changes, increment=("version",))
    if not written:
        raise StaleVersion(image.pk)
    image.version = version + 1
    for field, value in changes.items():
        setattr(image, field, value)


def first(queryset) -> Image | None:
    """The first row of ``queryset`` (id order unless it has its own), locked FOR UPDATE, skipping rows
    another transaction holds (PostgreSQL; SQLite serialises writers anyway): two people asking at
    once never get the same image."""
    return locked_first(queryset).first()


def locked_first(queryset):
    """``queryset`` as ``first`` reads it: id order unless it has its own, FOR UPDATE SKIP LOCKED, one row
    (for a compiled query, annotator.compiled)."""
    if not queryset.query.order_by:
        queryset = queryset.order_by("id")
    return queryset.select_for_update(skip_locked=True, of=("self",))[:1]


def lock_expiry():
    """When a hold taken now expires (QUEUE_LOCK_MINUTES): the image goes back to the queue then."""
    return timezone.now() + timedelta(minutes=settings.QUEUE_LOCK_MINUTES)
