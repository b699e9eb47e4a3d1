"""The annotation queue: hand a person the next image in the order they chose, hold it for them, and
let go of holds they will not use."""

from __future__ import annotations

import random
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from annotator.compiled import Compiled, row_update
from annotator.models import Image, ImageStatus, Project
from annotator.orders import QUEUE_FALLBACKS, QUEUE_ORDERS, images_ordered, queue_order_valid
from annotator.services.locking import first, lock_expiry, locked_first
from annotator.services.status_counts import status_counts_move


def queue_release(*, project: Project, user: AbstractBaseUser, image_ids: Iterable[int]) -> int:
    """Let go of images the queue holds for ``user`` (a prefetched image they will not open: an order
    they left, a tab they closed), so others get them now instead of in 10 minutes. Only the user's
    own holds are released; the number released is returned."""
    image_ids = list(image_ids)
    if not image_ids:  # the usual queue request: no savepoint, no query
        return 0
    with transaction.atomic():
        released = Image.objects.filter(
            project=project, pk__in=image_ids, locked_by=user, status=ImageStatus.IN_PROGRESS
        ).update(status=ImageStatus.UNLABELED, locked_by=None, locked_until=None, opened_at=None)
        status_counts_move(project_id=project.id, old=ImageStatus.IN_PROGRESS, new=ImageStatus.UNLABELED, n=released)
    return released


def queue_next(
    *,
    project: Project,
    user: AbstractBaseUser,
    order: str = "sequential",
    exclude: Iterable[int] = (),
    release: Iterable[int] = (),
) -> Image | None:
    """Hand ``user`` the next image nobody else holds, and hold it for them.

    First the user's own held images (a reload resumes where they were), then unlabeled images and
    in-progress images whose hold expired. Rows are picked with SELECT ... FOR UPDATE SKIP LOCKED on
    PostgreSQL, so concurrent requests never pick the same row; SQLite serialises writers anyway.
    Unless the project turns it off, an image that another image of its near-duplicate group stands
    for (Image.duplicate_of) is not served.
    """
    if not queue_order_valid(order):
        raise ValidationError(f"Unknown queue order “{order}”; use one of {', '.join(QUEUE_ORDERS)} or label:<id>.")
    exclude = list(exclude)
    now = timezone.now()
    # The images the queue may hand out (``_queue_images``). The picks every request makes (the user's
    # own hold, the first free image in id order) are compiled once (annotator.compiled); the model's
    # and the random orders build the ORM query from the same ``where``.
    where = {
        "project_id": project.id,
        "exclude": exclude,
        # The second pass of an overlap image must be someone else's, independent of the first.
        "overlap_user_id": user.pk if project.overlap_fraction else None,
    }
    with transaction.atomic():
        # Holds the user lets go of (an image prefetched in an order they left) go back to the queue.
        queue_release(project=project, user=user, image_ids=release)
        image = _HELD.first(**where, user_id=user.pk, now=now)
        held = image is not None  # a reload resumes the user's own image: its clock keeps running
        if image is None:
            where["one_per_group"] = project.queue_one_per_duplicate_group  # one image per near-duplicate group
            if order == "sequential":  # id order, as annotator.orders says, in two index scans
                image = _first_free(where, now)
            else:
                images = _queue_images(**where)
                free = images.filter(
                    Q(status=ImageStatus.UNLABELED) | Q(status=ImageStatus.IN_PROGRESS, locked_until__lte=now)
                )
                image = _first_random(free, images) if order == "random" else _first_ranked(project, free, order)
                for fallback in QUEUE_FALLBACKS.get(order, ()) if image is None else ():
                    image = (
                        _first_free(where, now) if fallback == "sequential" else _first_ranked(project, free, fallback)
                    )
                    if image is not None:
                        break
        if image is None:
            return None
        claim = {
            "status": ImageStatus.IN_PROGRESS,
            "locked_by": user,
            "locked_until": lock_expiry(),
            "opened_at": image.opened_at if held else now,
        }
        row_update(Image, {"pk": image.pk}, claim)
        # image was selected FOR UPDATE, so its status is the row's, and the claim is all that changed
        # since (no re-read for the answer).
        status_counts_move(project_id=project.id, old=image.status, new=ImageStatus.IN_PROGRESS)
    for field, value in claim.items():
        setattr(image, field, value)
    return image


def _first_free(where: dict, now) -> Image | None:
    # Two index range scans (project, status, id) and (project, status, locked_until), each LIMIT 1,
    # instead of one OR that would scan: the lower id of the two goes first.
    candidates = [_UNLABELED.first(**where), _EXPIRED.first(**where, now=now)]
    candidates = [c for c in candidates if c is not None]
    return min(candidates, key=lambda c: c.pk) if candidates else None


def _queue_images(project_id, exclude, overlap_user_id, one_per_group=False):
    """The images the queue may hand out (``queue_next``'s ``images``), for the compiled picks."""
    images = Image.objects.filter(project_id=project_id)
    if exclude is not None:
        images = images.exclude(pk__in=exclude)
    if overlap_user_id is not None:  # the second pass of an overlap image is someone else's
        images = images.exclude(overlap_first_by_id=overlap_user_id)
    if one_per_group:
        images = images.filter(duplicate_of__isnull=True)
    return images


_WHERE = {"project_id": "int", "exclude": "ids", "overlap_user_id": "int"}
_HELD = Compiled(
    lambda user_id, now, **where: locked_first(
        _queue_images(**where).filter(status=ImageStatus.IN_PROGRESS, locked_by_id=user_id, locked_until__gt=now)
    ),
    {**_WHERE, "user_id": "int", "now": "datetime"},
)
_UNLABELED = Compiled(lambda **where: locked_first(_queue_images(**where).filter(status=ImageStatus.UNLABELED)), _WHERE)
_EXPIRED = Compiled(
    lambda now, **where: locked_first(
        _queue_images(**where).filter(status=ImageStatus.IN_PROGRESS, locked_until__lte=now)
    ),
    {**_WHERE, "now": "datetime"},
)


def _first_ranked(project: Project, free, order: str) -> Image | None:
    """By the model (annotator.orders): the most uncertain image first, or the likeliest of one label."""
    ranked = images_ordered(free, project_id=project.id, order=order)
    return first(ranked.images) if ranked is not None else None


def _first_random(free, images) -> Image | None:
    # ORDER BY random() reads every row; a random pivot id and an index seek does not.
    bounds = images.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return None
    pivot = random.randint(bounds["low"], bounds["high"])
    return first(free.filter(pk__gte=pivot)) or first(free.filter(pk__lt=pivot))
