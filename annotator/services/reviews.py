"""The review workflow: a reviewer takes submitted images one at a time from a queue, accepts them,
or rejects them with a comment. A rejected image goes back to the annotation queue and the annotate
page shows the comment. Verdicts are versioned like every other write (a stale one gets 409)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotator import extensions
from annotator.models import Box, Image, ImageStatus, Project, Review, ReviewStatus
from annotator.orders import images_ordered
from annotator.services.annotations import BoxIn, annotation_rows
from annotator.services.locking import StaleVersion, bump_version, first, lock_expiry
from annotator.services.status_counts import label_box_counts_change, label_box_deltas

MAX_COMMENT = 2000


def review_next(
    *, project: Project, user: AbstractBaseUser, exclude: Iterable[int] = (), order: str = "oldest"
) -> Image | None:
    """Hand the reviewer the oldest unreviewed submission nobody else is reviewing, and hold it for
    them (the same soft lock as the annotation queue; SKIP LOCKED on PostgreSQL). ``order`` "mistakes":
    the ones whose labels the model doubts most first (annotator.orders), then the oldest."""
    now = timezone.now()
    pending = Image.objects.filter(
        project=project, status=ImageStatus.SUBMITTED, review_status=ReviewStatus.NONE
    ).exclude(pk__in=list(exclude))
    with transaction.atomic():
        image = first(pending.filter(locked_by=user, locked_until__gt=now).order_by("submitted_at", "id"))
        if image is None:
            free = pending.filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
            ranked = images_ordered(free, project_id=project.id, order=order) if order != "oldest" else None
            image = (first(ranked.images) if ranked is not None else None) or first(free.order_by("submitted_at", "id"))
        if image is None:
            return None
        Image.objects.filter(pk=image.pk).update(locked_by=user, locked_until=lock_expiry())
    image.refresh_from_db()
    return image


def review_accept(
    *, image: Image, user: AbstractBaseUser, version: int, boxes: Iterable[BoxIn] | None = None
) -> Review:
    """Accept the submission; with ``boxes``, the reviewer's fixed boxes replace the image's first,
    in the same write (one version), and the verdict is recorded as a reviewer edit."""
    _reviewable(image, version)
    edited = boxes is not None
    changes = {}
    if edited:
        tags = list(image.tags.values_list("label_id", flat=True))
        rows, _ = annotation_rows(image, user, list(boxes), tags)
        changes["box_count"] = len(rows)
    with transaction.atomic():
        bump_version(image, version, review_status=ReviewStatus.ACCEPTED, locked_by=None, locked_until=None, **changes)
        if edited:
            label_box_counts_change(
                changes=label_box_deltas(image_ids=[image.pk], new_label_ids=[b.label_id for b in rows])
            )
            Box.objects.filter(image=image).delete()
            Box.objects.bulk_create(rows)
        return _review_record(image, user, ReviewStatus.ACCEPTED, edited=edited)


def review_skip(*, image: Image, user: AbstractBaseUser) -> None:
    """The reviewer passes on this one for now: their hold goes, so another reviewer may take it."""
    Image.objects.filter(pk=image.pk, locked_by=user, status=ImageStatus.SUBMITTED).update(
        locked_by=None, locked_until=None
    )


def review_reject(*, image: Image, user: AbstractBaseUser, version: int, comment: str) -> Review:
    comment = comment.strip()
    if not comment:
        raise ValidationError("Say what to fix: a rejection needs a comment for the annotator.")
    if len(comment) > MAX_COMMENT:
        raise ValidationError(f"A comment can be at most {MAX_COMMENT} characters.")
    _reviewable(image, version)
    with transaction.atomic():
        # Back to the annotation queue, boxes and tags kept for the annotator to fix.
        bump_version(
            image,
            version,
            status=ImageStatus.UNLABELED,
            review_status=ReviewStatus.REJECTED,
            locked_by=None,
            locked_until=None,
        )
        return _review_record(image, user, ReviewStatus.REJECTED, comment=comment)


def _reviewable(image: Image, version: int) -> None:
    # A verdict on a version that is not the image's current one is stale (409, re-read) before it is
    # anything else: the other reviewer's verdict that moved the image on is what the client must see.
    if image.version != version:
        raise StaleVersion(image.pk)
    if image.status != ImageStatus.SUBMITTED:
        raise ValidationError(
            f"Only submitted images can be reviewed; this one is {image.get_status_display().lower()}."
        )


def _review_record(image: Image, user: AbstractBaseUser, decision: str, **fields) -> Review:
    """The verdict's row: who submitted the image (the annotator it is about) and who judged it."""
    review = Review.objects.create(
        image=image, annotator_id=image.submitted_by_id, reviewer=user, decision=decision, **fields
    )
    extensions.event_emit(
        project_id=image.project_id,
        event="image.reviewed",
        data={"image_id": image.pk, "decision": decision, "reviewer": user.get_username(), "comment": review.comment},
    )
    return review
