"""The denormalised counters: images per (project, status) and boxes per label, each kept in
STATUS_COUNT_SHARDS rows and moved in the same transaction as the write that changes them."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F

from annotator.models import Box, Image, ImageStatus, LabelBoxCount, LabelClass, ProjectStatusCount

# ---------------------------------------------------------------------------------------------
# Status counters
#
# Every write that changes how many images a project has in a status moves its counters in the same
# transaction. The call sites: images._store_batch and images._store_one_by_one (import: +
# unlabeled), annotations.annotations_import (-> submitted), locking.bump_version (submit, skip, review
# verdicts, and a save that takes an unlabeled image in progress), queue.queue_next and
# queue.queue_release (release -> unlabeled, claim -> in progress). Anything else that changes
# Image.status must call status_counts_change too.


def status_counts_change(*, project_id: int, changes: dict[str, int]) -> None:
    """Add these deltas to the project's per-status counters (inside the caller's transaction).

    Each status is kept in STATUS_COUNT_SHARDS rows, summed on read: a request updates the rows of
    its own shard (fixed per process and thread), so concurrent submits in one project do not all
    queue on one row lock. Rows are updated in status order (the one UPDATE of a status change
    walks the unique index (project, status, shard)), so two transactions never take the same two
    rows in opposite orders."""
    shard = counter_shard()
    changes = {status: delta for status, delta in sorted(changes.items()) if delta}
    moved: set[str] = set()
    if len(changes) > 1:  # a status change moves two counters: one UPDATE ... RETURNING, not two
        moved = _counters_add(project_id, shard, changes)
    for status, delta in changes.items():
        if status in moved:
            continue
        counter = ProjectStatusCount.objects.filter(project_id=project_id, status=status, shard=shard)
        if len(changes) == 1 and counter.update(count=F("count") + delta):
            continue  # (with more than one, the UPDATE above found no row: create it)
        try:
            with transaction.atomic():  # a savepoint: losing the race to create the row is fine
                ProjectStatusCount.objects.create(project_id=project_id, status=status, shard=shard, count=delta)
        except IntegrityError:
            counter.update(count=F("count") + delta)


def _counters_add(project_id: int, shard: int, changes: dict[str, int]) -> set[str]:
    """Add the deltas to the shard's rows that exist, in one statement; -> the statuses it moved
    (RETURNING: PostgreSQL, and SQLite from 3.35). A row missing (the shard's first change of that
    status) is left to the caller, which creates it."""
    table = connection.ops.quote_name(ProjectStatusCount._meta.db_table)
    cases = " ".join("WHEN %s THEN %s" for _ in changes)
    marks = ", ".join("%s" for _ in changes)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET count = count + CASE status {cases} ELSE 0 END "
            f"WHERE project_id = %s AND shard = %s AND status IN ({marks}) RETURNING status",
            [*(v for item in changes.items() for v in item), project_id, shard, *changes],
        )
        return {status for (status,) in cursor.fetchall()}


def counter_shard() -> int:
    # Fixed per process and thread: two requests running at once never update the same row.
    return hash((os.getpid(), threading.get_ident())) % settings.STATUS_COUNT_SHARDS


def status_counts_move(*, project_id: int, old: str, new: str, n: int = 1) -> None:
    if old != new and n:
        status_counts_change(project_id=project_id, changes={old: -n, new: n})


def status_counts_recount(*, project_id: int) -> dict[str, int]:
    """Set the project's counters to a fresh count of its images (all of it in shard 0); returns
    the counts.

    The counter rows are locked first: a concurrent status change either committed before (and the
    count sees it) or waits for us and then adds its delta to the recounted value."""
    with transaction.atomic():
        for status in ImageStatus.values:
            ProjectStatusCount.objects.get_or_create(project_id=project_id, status=status, shard=0)
        list(ProjectStatusCount.objects.select_for_update().filter(project_id=project_id).order_by("status", "shard"))
        counts = dict.fromkeys(ImageStatus.values, 0)
        counts.update(
            Image.objects.filter(project_id=project_id).values_list("status").annotate(n=Count("id")).order_by()
        )
        ProjectStatusCount.objects.filter(project_id=project_id).exclude(shard=0).update(count=0)
        for status, n in counts.items():
            ProjectStatusCount.objects.filter(project_id=project_id, status=status, shard=0).update(count=n)
    return counts


# ---------------------------------------------------------------------------------------------
# Boxes per label
#
# Like the status counters: every write that adds or removes boxes moves LabelBoxCount in the same
# transaction, after the status counters (one order everywhere, so no lock cycles). The call sites:
# annotations.annotations_import, annotations.annotation_save, the overlap first pass (which empties
# the image) and reviews.review_accept with the reviewer's boxes. Deleting a label or project cascades to its counters; a box can't lose
# its label otherwise (PROTECT). Anything else that writes Box rows must call label_box_counts_change.


def label_box_deltas(*, image_ids: list[int], new_label_ids: Iterable[int]) -> dict[int, int]:
    """{label id: boxes after - boxes before} when these images' boxes are replaced by boxes of
    ``new_label_ids`` (one per box). One grouped query over the images' boxes (index box_image_label)."""
    deltas: dict[int, int] = {}
    for label_id in new_label_ids:
        deltas[label_id] = deltas.get(label_id, 0) + 1
    if image_ids:
        for label_id, n in (
            Box.objects.filter(image_id__in=image_ids).values_list("label_id").annotate(n=Count("id")).order_by()
        ):
            deltas[label_id] = deltas.get(label_id, 0) - n
    return {label_id: d for label_id, d in deltas.items() if d}


def label_box_counts_change(*, changes: dict[int, int]) -> None:
    """Add these deltas to the labels' box counters (inside the caller's transaction), in this
    process-and-thread's shard, in label order."""
    shard = counter_shard()
    for label_id, delta in sorted(changes.items()):
        if not delta:
            continue
        counter = LabelBoxCount.objects.filter(label_id=label_id, shard=shard)
        if counter.update(count=F("count") + delta):
            continue
        try:
            with transaction.atomic():  # a savepoint: losing the race to create the row is fine
                LabelBoxCount.objects.create(label_id=label_id, shard=shard, count=delta)
        except IntegrityError:
            counter.update(count=F("count") + delta)


def label_box_counts_recount(*, project_id: int) -> dict[int, int]:
    """Set the project's box counters to a fresh count of its boxes (shard 0); returns {label: n}.
    The counter rows are locked first, as in status_counts_recount."""
    with transaction.atomic():
        label_ids = list(LabelClass.objects.filter(project_id=project_id).order_by("id").values_list("id", flat=True))
        for label_id in label_ids:
            LabelBoxCount.objects.get_or_create(label_id=label_id, shard=0)
        list(LabelBoxCount.objects.select_for_update().filter(label_id__in=label_ids).order_by("label_id", "shard"))
        counts = dict.fromkeys(label_ids, 0)
        counts.update(
            Box.objects.filter(label_id__in=label_ids).values_list("label_id").annotate(n=Count("id")).order_by()
        )
        LabelBoxCount.objects.filter(label_id__in=label_ids).exclude(shard=0).update(count=0)
        for label_id, n in counts.items():
            LabelBoxCount.objects.filter(label_id=label_id, shard=0).update(count=n)
    return counts
