"""Annotation writes from the annotate page: save (optimistic version), submit, skip, and the queue.

Every write checks the version the client last saw with one conditional UPDATE, so of two people
saving the same image one wins and the other gets the current state back (HTTP 409): nobody's work
is overwritten silently.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Min, Q
from django.utils import timezone

from annotator.agreement import in_overlap_sample
from annotator.attributes import values_clean
from annotator.models import AnnotationSnapshot, Box, Image, ImageStatus, ImageTag, LabelClass, Project, ReviewStatus
from annotator.services import BoxIn, clip_box, label_box_counts_change, label_box_deltas, status_counts_move

MAX_BOXES_PER_IMAGE = 10_000
QUEUE_ORDERS = ("sequential", "random", "uncertain")  # and "label:<id>": suggested as that label, likeliest first


def queue_order_valid(order: str) -> bool:
    return order in QUEUE_ORDERS or (order.startswith("label:") and order[6:].isdigit())


class StaleVersion(Exception):
    """The client's version is not the image's current one; ``image_id`` says which to re-read."""

    def __init__(self, image_id: int):
        super().__init__(image_id)
        self.image_id = image_id


def annotation_save(*, image: Image, user: AbstractBaseUser, version: int, boxes: Iterable[BoxIn],
                    tag_label_ids: Iterable[int]) -> None:
    """Replace the image's boxes and tags with these, if ``version`` is still current."""
    rows, tags = _validated(image, user, list(boxes), list(tag_label_ids))
    try:
        with transaction.atomic():
            _bump_version(image, version, box_count=len(rows), human_tag_count=sum(t.source == "human" for t in tags),
                          **_extended_lock(image, user))
            label_box_counts_change(changes=label_box_deltas(image_ids=[image.pk],
                                                             new_label_ids=[b.label_id for b in rows]))
            Box.objects.filter(image=image).delete()
            ImageTag.objects.filter(image=image).delete()
            Box.objects.bulk_create(rows)
            ImageTag.objects.bulk_create(tags)
    except IntegrityError:
        # A label was deleted between the check above and the insert (the foreign key is checked
        # at commit): nothing was saved; say which label is gone.
        used = {r.label_id for r in rows} | {t.label_id for t in tags}
        gone = used - set(image.project.labels.filter(id__in=used).values_list("id", flat=True))
        if not gone:
            raise
        raise ValidationError(f"The label(s) {sorted(gone)} were deleted meanwhile; nothing was saved. "
                              "Reload the page to see the project's labels.") from None


def image_tag_set(*, image: Image, label: LabelClass, user: AbstractBaseUser | None, source: str,
                  present: bool | None) -> None:
    """One tag changed outside the editor (a decision on a model suggestion): ``present`` True adds
    it (a tag the image already has is kept as it is), False removes it while it is still from
    ``source`` (a person who re-set it keeps it), None leaves the tags. The image's version moves
    in every case, whatever version the caller saw, so an editor open on it re-reads before saving."""
    with transaction.atomic():
        if present:
            ImageTag.objects.get_or_create(image=image, label=label, defaults={"author": user, "source": source})
        elif present is False:
            ImageTag.objects.filter(image=image, label=label, source=source).delete()
        Image.objects.filter(pk=image.pk).update(version=F("version") + 1)


def image_submit(*, image: Image, user: AbstractBaseUser, version: int) -> None:
    """Mark the image labeled: its boxes and tags are complete, so every other label is a known negative."""
    from labeling.services import submission_noted  # model assistance builds on this app, not the reverse

    now = timezone.now()
    with transaction.atomic():
        if _overlap_first_pass(image, user, version):
            return
        resubmit = image.status == ImageStatus.SUBMITTED  # an edited image again: not new evidence
        # A (re-)submission waits for a fresh review.
        _bump_version(image, version, status=ImageStatus.SUBMITTED, submitted_by=user, submitted_at=now,
                      locked_by=None, locked_until=None, review_status=ReviewStatus.NONE, **_work_time(image, user, now))
        if not resubmit:
            submission_noted(project_id=image.project_id)


def _overlap_first_pass(image: Image, user: AbstractBaseUser, version: int) -> bool:
    """Images in the project's overlap sample are labeled twice, independently. The first submission
    is kept as a snapshot and the image goes back to the queue empty, for someone else; the second
    is kept too and the image is submitted as usual. True when this was a first pass."""
    if not in_overlap_sample(image.pk, image.project.overlap_fraction):
        return False
    passes = dict(AnnotationSnapshot.objects.filter(image=image).values_list("pass_number", "annotator_id"))
    if 2 in passes:
        return False  # already labeled twice: later edits are ordinary
    if 1 in passes and passes[1] != user.pk:
        _snapshot(image, user, 2)
        return False
    _bump_version(image, version, status=ImageStatus.UNLABELED, locked_by=None, locked_until=None,
                  overlap_first_by=user, review_status=ReviewStatus.NONE, box_count=0, human_tag_count=0)
    _snapshot(image, user, 1)
    label_box_counts_change(changes=label_box_deltas(image_ids=[image.pk], new_label_ids=[]))
    Box.objects.filter(image=image).delete()
    ImageTag.objects.filter(image=image).delete()
    return True


def _snapshot(image: Image, user: AbstractBaseUser, pass_number: int) -> None:
    boxes = [list(b) for b in image.boxes.order_by("id").values_list("label_id", "x", "y", "w", "h")]
    tags = list(image.tags.order_by("label_id").values_list("label_id", flat=True))
    AnnotationSnapshot.objects.update_or_create(image=image, pass_number=pass_number,
                                                defaults={"annotator": user, "boxes": boxes, "tags": tags})


def _work_time(image: Image, user: AbstractBaseUser, now) -> dict:
    # Only a submit of an image the queue handed to this person measures their time: an image opened
    # from the grid, or re-submitted later, has no hand-out to count from.
    if image.status == ImageStatus.IN_PROGRESS and image.locked_by_id == user.pk and image.opened_at is not None:
        return {"work_seconds": max(0.0, (now - image.opened_at).total_seconds())}
    return {}


def image_skip(*, image: Image, user: AbstractBaseUser, version: int) -> None:
    # A skipped image is not labeled work: it leaves the time-per-image median.
    _bump_version(image, version, status=ImageStatus.SKIPPED, locked_by=None, locked_until=None, work_seconds=None)


def _bump_version(image: Image, version: int, **changes) -> None:
    """The versioned write; ``image`` then holds what was written (callers answer with it, no re-read)."""
    row = Image.objects.filter(pk=image.pk, version=version)
    # A savepoint when nested (two round trips): without one, a StaleVersion would poison a caller's
    # transaction that goes on to read the current state for its 409 (tests/annotator/test_api_rest.py).
    with transaction.atomic():
        # A status change moves the project's counters from the status the row has now (locked:
        # the queue changes status without a version bump, so the caller's copy may be old).
        old = row.select_for_update().values_list("status", flat=True).first() if "status" in changes else None
        if not row.update(version=F("version") + 1, **changes):
            raise StaleVersion(image.pk)
        if old is not None:
            status_counts_move(project_id=image.project_id, old=old, new=changes["status"])
    image.version = version + 1
    for field, value in changes.items():
        setattr(image, field, value)


def _extended_lock(image: Image, user: AbstractBaseUser) -> dict:
    # Working on an image you hold keeps holding it; saving an unlabeled image opened from the grid
    # marks it in progress and yours, so the queue does not hand it to someone else meanwhile.
    if image.status == ImageStatus.UNLABELED:
        # Not handed out by the queue: no start time to measure the work from.
        return {"status": ImageStatus.IN_PROGRESS, "locked_by": user, "locked_until": _lock_expiry(), "opened_at": None}
    if image.status == ImageStatus.IN_PROGRESS and image.locked_by_id == user.pk:
        return {"status": ImageStatus.IN_PROGRESS, "locked_by": user, "locked_until": _lock_expiry()}
    return {}


def _validated(image: Image, user: AbstractBaseUser, boxes: list[BoxIn],
               tag_label_ids: list[int]) -> tuple[list[Box], list[ImageTag]]:
    if len(boxes) > MAX_BOXES_PER_IMAGE:
        raise ValidationError(f"An image can hold at most {MAX_BOXES_PER_IMAGE} boxes.")
    specs = dict(image.project.labels.values_list("id", "attributes"))
    unknown = {b.label_id for b in boxes} | set(tag_label_ids)
    unknown -= set(specs)
    if unknown:
        raise ValidationError(f"Unknown label id(s) for this project: {sorted(unknown)}.")
    rows = [Box(image=image, label_id=b.label_id, author=user, source="human",
                attributes=values_clean(b.attributes, specs[b.label_id]), **clip_box(b, image.width, image.height))
            for b in boxes]
    # A tag that stays keeps where it came from (an accepted suggestion stays "model"), since the
    # client sends label ids only; a tag it adds is the person's.
    kept = dict(ImageTag.objects.filter(image=image).values_list("label_id", "source"))
    tags = [ImageTag(image=image, label_id=label_id, author=user, source=kept.get(label_id, "human"))
            for label_id in dict.fromkeys(tag_label_ids)]
    return rows, tags


def _lock_expiry():
    return timezone.now() + timedelta(minutes=settings.QUEUE_LOCK_MINUTES)


# ---------------------------------------------------------------------------------------------
# The queue


def queue_release(*, project: Project, user: AbstractBaseUser, image_ids: Iterable[int]) -> int:
    """Let go of images the queue holds for ``user`` (a prefetched image they will not open: an order
    they left, a tab they closed), so others get them now instead of in 10 minutes. Only the user's
    own holds are released; the number released is returned."""
    image_ids = list(image_ids)
    if not image_ids:  # the usual queue request: no savepoint, no query
        return 0
    with transaction.atomic():
        released = Image.objects.filter(project=project, pk__in=image_ids, locked_by=user,
                                        status=ImageStatus.IN_PROGRESS).update(status=ImageStatus.UNLABELED,
                                                                               locked_by=None, locked_until=None,
                                                                               opened_at=None)
        status_counts_move(project_id=project.id, old=ImageStatus.IN_PROGRESS, new=ImageStatus.UNLABELED, n=released)
    return released


def queue_next(*, project: Project, user: AbstractBaseUser, order: str = "sequential",
               exclude: Iterable[int] = (), release: Iterable[int] = ()) -> Image | None:
    """Hand ``user`` the next image nobody else holds, and hold it for them.

    First the user's own held images (a reload resumes where they were), then unlabeled images and
    in-progress images whose hold expired. Rows are picked with SELECT ... FOR UPDATE SKIP LOCKED on
    PostgreSQL, so concurrent requests never pick the same row; SQLite serialises writers anyway.
    """
    if not queue_order_valid(order):
        raise ValidationError(f"Unknown queue order “{order}”; use one of {', '.join(QUEUE_ORDERS)} or label:<id>.")
    exclude = list(exclude)
    now = timezone.now()
    images = Image.objects.filter(project=project).exclude(pk__in=exclude)
    if project.overlap_fraction:
        # The second pass of an overlap image must be someone else's, independent of the first.
        images = images.exclude(overlap_first_by=user)
    with transaction.atomic():
        # Holds the user lets go of (an image prefetched in an order they left) go back to the queue.
        queue_release(project=project, user=user, image_ids=release)
        image = _first(images.filter(status=ImageStatus.IN_PROGRESS, locked_by=user, locked_until__gt=now))
        held = image is not None  # a reload resumes the user's own image: its clock keeps running
        if image is None:
            free = images.filter(Q(status=ImageStatus.UNLABELED) | Q(status=ImageStatus.IN_PROGRESS,
                                                                    locked_until__lte=now))
            if order == "random":
                image = _first_random(free, images)
            elif order == "sequential":
                image = _first_free(images, now)
            else:
                image = _first_suggested(project, free, order) or (_first_free(images, now)
                                                                   if order == "uncertain" else None)
        if image is None:
            return None
        claim = {"status": ImageStatus.IN_PROGRESS, "locked_by": user, "locked_until": _lock_expiry(),
                 "opened_at": image.opened_at if held else now}
        Image.objects.filter(pk=image.pk).update(**claim)
        # image was selected FOR UPDATE, so its status is the row's, and the claim is all that changed
        # since (no re-read for the answer).
        status_counts_move(project_id=project.id, old=image.status, new=ImageStatus.IN_PROGRESS)
    for field, value in claim.items():
        setattr(image, field, value)
    return image


def _first(queryset) -> Image | None:
    if not queryset.query.order_by:
        queryset = queryset.order_by("id")
    return queryset.select_for_update(skip_locked=True, of=("self",)).first()


def _first_free(images, now) -> Image | None:
    # Two index range scans (project, status, id) and (project, status, locked_until), each LIMIT 1,
    # instead of one OR that would scan: the lower id of the two goes first.
    candidates = [
        _first(images.filter(status=ImageStatus.UNLABELED)),
        _first(images.filter(status=ImageStatus.IN_PROGRESS, locked_until__lte=now)),
    ]
    candidates = [c for c in candidates if c is not None]
    return min(candidates, key=lambda c: c.pk) if candidates else None


def _first_suggested(project: Project, free, order: str) -> Image | None:
    """By the current probe: the most uncertain image first, or the likeliest of one label."""
    from labeling.models import ProjectModelState  # model assistance builds on this app, not the reverse

    run_id = ProjectModelState.objects.filter(project=project).values_list("probe_run_id", flat=True).first()
    if run_id is None:
        return None
    if order == "uncertain":
        return _first(free.filter(uncertainties__run_id=run_id).order_by("-uncertainties__score", "id"))
    return _first(free.filter(suggestions__run_id=run_id, suggestions__label_id=int(order[6:]),
                              suggestions__predicted=True).order_by("-suggestions__probability", "id"))


def _first_random(free, images) -> Image | None:
    # ORDER BY random() reads every row; a random pivot id and an index seek does not.
    bounds = images.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return None
    pivot = random.randint(bounds["low"], bounds["high"])
    return _first(free.filter(pk__gte=pivot)) or _first(free.filter(pk__lt=pivot))
