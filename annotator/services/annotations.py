"""Annotation writes: the annotate page's save (optimistic version), submit and skip, and annotations
from elsewhere (imports, the demo's ground truth) replacing an image's boxes and tags at once.

Every write from the annotate page checks the version the client last saw with one conditional UPDATE
(locking.bump_version), so of two people saving the same image one wins and the other gets the
current state back (HTTP 409): nobody's work is overwritten silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, FloatField, Value
from django.utils import timezone

from annotator import attributes as attributes_rules
from annotator import extensions
from annotator.agreement import in_overlap_sample
from annotator.attributes import values_clean
from annotator.compiled import Compiled
from annotator.models import AnnotationSnapshot, Box, Image, ImageStatus, ImageTag, LabelClass, Project, ReviewStatus
from annotator.models import Source
from annotator.services.locking import bump_version, lock_expiry
from annotator.services.status_counts import label_box_counts_change, label_box_deltas, status_counts_change

MAX_BOXES_PER_IMAGE = 10_000
MODEL_BOX_SOURCES = (Source.MODEL, Source.MODEL_ADJUSTED)  # boxes that came from the detector's suggestions


@dataclass(frozen=True)
class BoxIn:
    label_id: int
    x: float
    y: float
    w: float
    h: float
    attributes: dict = field(default_factory=dict, hash=False, compare=False)  # annotator/attributes.py
    # The client says this is one of the model's boxes that a person moved, resized or relabeled
    # (source "model_adjusted"); honoured only as far as the image held such boxes (_rows_and_before).
    adjusted: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class ImageAnnotations:
    image_id: int
    boxes: tuple[BoxIn, ...] = ()
    tag_label_ids: tuple[int, ...] = ()


def annotations_import(
    *, project: Project, items: Iterable[ImageAnnotations], user: AbstractBaseUser | None, source: str = "human"
) -> int:
    """Replace the annotations of the given images and mark them submitted, all or nothing.
    Boxes are clipped to their image; a box left with no area is an error, not a silent drop."""
    items = list(items)
    specs = dict(project.labels.values_list("id", "attributes"))
    label_ids = set(specs)
    images = Image.objects.in_bulk([item.image_id for item in items])
    boxes, tags = [], []
    for item in items:
        image = images.get(item.image_id)
        if image is None or image.project_id != project.id:
            raise ValidationError(f"Image {item.image_id} is not in this project.")
        for box in item.boxes:
            if box.label_id not in label_ids:
                raise ValidationError(f"Label {box.label_id} is not in this project.")
            # Other tools write attributes we do not define: kept when the label defines them, else dropped.
            values = attributes_rules.values_clean(box.attributes, specs[box.label_id], strict=False)
            boxes.append(
                Box(
                    image=image,
                    label_id=box.label_id,
                    author=user,
                    source=source,
                    attributes=values,
                    **clip_box(box, image.width, image.height),
                )
            )
        for label_id in set(item.tag_label_ids):
            if label_id not in label_ids:
                raise ValidationError(f"Label {label_id} is not in this project.")
            tags.append(ImageTag(image=image, label_id=label_id, author=user, source=source))
    with transaction.atomic():
        # The rows' statuses as they are now, locked so the counters move from what we overwrite.
        before = list(Image.objects.select_for_update().filter(id__in=images).values_list("status", flat=True))
        box_deltas = label_box_deltas(image_ids=list(images), new_label_ids=[b.label_id for b in boxes])
        Box.objects.filter(image_id__in=images).delete()
        ImageTag.objects.filter(image_id__in=images).delete()
        Box.objects.bulk_create(boxes, batch_size=1000)
        ImageTag.objects.bulk_create(tags, batch_size=1000)
        Image.objects.filter(id__in=images).update(
            status=ImageStatus.SUBMITTED,
            submitted_by=user,
            submitted_at=timezone.now(),
            version=F("version") + 1,
            **annotation_counts(),
        )
        changes = {ImageStatus.SUBMITTED: len(before)}
        for status in before:
            changes[status] = changes.get(status, 0) - 1
        status_counts_change(project_id=project.id, changes=changes)
        label_box_counts_change(changes=box_deltas)
    return len(items)


def annotation_counts() -> dict:
    """``Image.box_count`` and ``human_tag_count`` as subqueries, for an UPDATE of many images."""
    from django.db.models import Count, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce

    def count(queryset):
        return Coalesce(
            Subquery(
                queryset.filter(image=OuterRef("pk")).order_by().values("image").annotate(n=Count("id")).values("n")[:1]
            ),
            Value(0),
        )

    return {"box_count": count(Box.objects.all()), "human_tag_count": count(ImageTag.objects.filter(source="human"))}


def clip_box(box: BoxIn, width: int, height: int) -> dict[str, float]:
    values = (box.x, box.y, box.w, box.h)
    if not all(math.isfinite(v) for v in values):
        raise ValidationError("Box coordinates must be finite numbers.")
    x0, y0 = max(0.0, box.x), max(0.0, box.y)
    x1, y1 = min(float(width), box.x + box.w), min(float(height), box.y + box.h)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        raise ValidationError(f"The box {values} lies outside the {width}×{height} image or has no area.")
    return {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}


def annotation_save(
    *, image: Image, user: AbstractBaseUser, version: int, boxes: Iterable[BoxIn], tag_label_ids: Iterable[int]
) -> tuple[list[Box], list[ImageTag]]:
    """Replace the image's boxes and tags with these, if ``version`` is still current. -> the rows
    written, with their ids (an answer needs no re-read: selectors.annotation_state's ``written``)."""
    rows, tags, before = _rows_and_before(image, user, list(boxes), list(tag_label_ids))
    # ``before`` (the image's boxes per label, and whether it had tags) was read before the versioned
    # write: every writer of boxes and tags moves the version, so when bump_version succeeds nobody
    # changed them since (and the row lock keeps it so until commit).
    changes = {label_id: -n for label_id, n in before.box_labels.items()}  # boxes per label: new - old
    for row in rows:
        changes[row.label_id] = changes.get(row.label_id, 0) + 1
    try:
        with transaction.atomic():
            bump_version(
                image,
                version,
                box_count=len(rows),
                human_tag_count=sum(t.source == "human" for t in tags),
                **_extended_lock(image, user),
            )
            label_box_counts_change(changes={label_id: d for label_id, d in changes.items() if d})
            if before.box_labels:  # nothing to delete on a first save: no round trip
                Box.objects.filter(image=image).delete()
            if before.tags:
                ImageTag.objects.filter(image=image).delete()
            Box.objects.bulk_create(rows)
            ImageTag.objects.bulk_create(tags)
        return rows, tags
    except IntegrityError:
        # A label was deleted between the check above and the insert (the foreign key is checked
        # at commit): nothing was saved; say which label is gone.
        used = {r.label_id for r in rows} | {t.label_id for t in tags}
        gone = used - set(image.project.labels.filter(id__in=used).values_list("id", flat=True))
        if not gone:
            raise
        raise ValidationError(
            f"The label(s) {sorted(gone)} were deleted meanwhile; nothing was saved. "
            "Reload the page to see the project's labels."
        ) from None


def image_tag_set(
    *, image: Image, label: LabelClass, user: AbstractBaseUser | None, source: str, present: bool | None
) -> None:
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


def tags_auto_add(*, project_id: int, pairs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Tags the model sets by itself (auto-accept), as (image id, label id) pairs: only on unlabeled
    images nobody holds now and that lack the tag; source ``model_auto``, no author. Each touched
    image's version moves (one UPDATE), so an editor that opened it before re-reads before saving.
    -> the pairs written."""
    wanted: dict[int, set[int]] = {}
    for image_id, label_id in pairs:
        wanted.setdefault(int(image_id), set()).add(int(label_id))
    if not wanted:
        return []
    now = timezone.now()
    written: list[tuple[int, int]] = []
    ids = sorted(wanted)
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        with transaction.atomic():
            free = list(
                Image.objects.filter(project_id=project_id, pk__in=chunk, status=ImageStatus.UNLABELED)
                .exclude(locked_until__gt=now)
                .select_for_update()
                .values_list("pk", flat=True)
            )
            present = set(ImageTag.objects.filter(image_id__in=free).values_list("image_id", "label_id"))
            rows = [(i, j) for i in free for j in sorted(wanted[i]) if (i, j) not in present]
            ImageTag.objects.bulk_create(
                [ImageTag(image_id=i, label_id=j, source=Source.MODEL_AUTO) for i, j in rows], ignore_conflicts=True
            )
            Image.objects.filter(pk__in=sorted({i for i, _ in rows})).update(version=F("version") + 1)
        written.extend(rows)
    return written


def image_box_add(*, image: Image, box: BoxIn, user: AbstractBaseUser | None, source: str) -> Box:
    """One box added outside the editor (an accepted box suggestion), clipped to the image. Like
    ``image_tag_set`` the image's version moves whatever version the caller saw, so an editor open
    on it re-reads before saving; the box counters move in the same transaction."""
    if box.label_id not in set(image.project.labels.values_list("id", flat=True)):
        raise ValidationError(f"Unknown label id for this project: {box.label_id}.")
    geometry = clip_box(box, image.width, image.height)
    with transaction.atomic():
        if Box.objects.filter(image=image).count() >= MAX_BOXES_PER_IMAGE:
            raise ValidationError(f"An image can hold at most {MAX_BOXES_PER_IMAGE} boxes.")
        row = Box.objects.create(image=image, label_id=box.label_id, author=user, source=source, **geometry)
        label_box_counts_change(changes={box.label_id: 1})
        Image.objects.filter(pk=image.pk).update(version=F("version") + 1, box_count=F("box_count") + 1)
    return row


@dataclass(frozen=True)
class _Before:
    """What an image held before a save: {label id: boxes} and whether it had tags."""

    box_labels: dict[int, int]
    tags: bool


def _kept_sources(image: Image) -> tuple[dict[int, str], dict[tuple, str], _Before]:
    """({label id: source} of the image's tags, {box key: source} of its boxes not drawn by a
    person}, what it held) in one query (a UNION: this is on every save's path). A tag row has
    x = -1, which no box has (box_inside_image_origin)."""
    tag_sources, box_sources, box_labels = {}, {}, {}
    for label_id, source, x, y, w, h in _KEPT_SOURCES.rows(image_id=image.pk):
        if x < 0:
            tag_sources[label_id] = source
            continue
        box_labels[label_id] = box_labels.get(label_id, 0) + 1
        if source != "human":
            box_sources[_box_key(label_id, x, y, w, h)] = source
    return tag_sources, box_sources, _Before(box_labels, bool(tag_sources))


def _kept_sources_query(image_id: int):
    no = Value(-1.0, output_field=FloatField())
    tags = ImageTag.objects.filter(image_id=image_id).order_by().annotate(kx=no, ky=no, kw=no, kh=no)
    boxes = Box.objects.filter(image_id=image_id).order_by()
    return tags.values_list("label_id", "source", "kx", "ky", "kw", "kh").union(
        boxes.values_list("label_id", "source", "x", "y", "w", "h"), all=True
    )


_KEPT_SOURCES = Compiled(_kept_sources_query, {"image_id": "int"})
_LABEL_ATTRIBUTES = Compiled(
    lambda project_id: LabelClass.objects.filter(project_id=project_id).values_list("id", "attributes"),
    {"project_id": "int"},
)


def _box_key(label_id: int, x: float, y: float, w: float, h: float) -> tuple:
    return (label_id, round(x, 3), round(y, 3), round(w, 3), round(h, 3))


def image_version_bump(*, image: Image) -> None:
    """What the annotate page shows of the image changed outside the editor (a decision on a box
    suggestion): the version moves, so an editor open on it re-reads before saving."""
    Image.objects.filter(pk=image.pk).update(version=F("version") + 1)


def image_box_remove(*, image: Image, box_id: int, sources: Iterable[str]) -> bool:
    """Take back a box added by ``image_box_add`` (undo), while it is still one of ``sources``
    (a person who redrew it keeps it). True when it was removed."""
    with transaction.atomic():
        box = Box.objects.select_for_update().filter(pk=box_id, image=image, source__in=list(sources)).first()
        if box is None:
            return False
        box.delete()
        label_box_counts_change(changes={box.label_id: -1})
        Image.objects.filter(pk=image.pk).update(version=F("version") + 1, box_count=F("box_count") - 1)
    return True


def image_submit(*, image: Image, user: AbstractBaseUser, version: int) -> None:
    """Mark the image labeled: its boxes and tags are complete, so every other label is a known negative."""
    now = timezone.now()
    with transaction.atomic():
        if _overlap_first_pass(image, user, version):
            return
        resubmit = image.status == ImageStatus.SUBMITTED  # an edited image again: not new evidence
        # A (re-)submission waits for a fresh review.
        bump_version(
            image,
            version,
            status=ImageStatus.SUBMITTED,
            submitted_by=user,
            submitted_at=now,
            locked_by=None,
            locked_until=None,
            review_status=ReviewStatus.NONE,
            **_work_time(image, user, now),
        )
        if not resubmit:
            for listener in extensions.SUBMISSION_LISTENERS:  # model assistance counts towards a refit
                listener(project_id=image.project_id, image_id=image.id)
        extensions.event_emit(
            project_id=image.project_id,
            event="image.submitted",
            data={
                "image_id": image.pk,
                "version": image.version,
                "submitted_by": user.get_username(),
                "resubmit": resubmit,
            },
        )


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
    bump_version(
        image,
        version,
        status=ImageStatus.UNLABELED,
        locked_by=None,
        locked_until=None,
        overlap_first_by=user,
        review_status=ReviewStatus.NONE,
        box_count=0,
        human_tag_count=0,
    )
    _snapshot(image, user, 1)
    label_box_counts_change(changes=label_box_deltas(image_ids=[image.pk], new_label_ids=[]))
    Box.objects.filter(image=image).delete()
    ImageTag.objects.filter(image=image).delete()
    return True


def _snapshot(image: Image, user: AbstractBaseUser, pass_number: int) -> None:
    boxes = [list(b) for b in image.boxes.order_by("id").values_list("label_id", "x", "y", "w", "h")]
    tags = list(image.tags.order_by("label_id").values_list("label_id", flat=True))
    AnnotationSnapshot.objects.update_or_create(
        image=image, pass_number=pass_number, defaults={"annotator": user, "boxes": boxes, "tags": tags}
    )


def _work_time(image: Image, user: AbstractBaseUser, now) -> dict:
    # Only a submit of an image the queue handed to this person measures their time: an image opened
    # from the grid, or re-submitted later, has no hand-out to count from.
    if image.status == ImageStatus.IN_PROGRESS and image.locked_by_id == user.pk and image.opened_at is not None:
        return {"work_seconds": max(0.0, (now - image.opened_at).total_seconds())}
    return {}


def image_skip(*, image: Image, user: AbstractBaseUser, version: int) -> None:
    # A skipped image is not labeled work: it leaves the time-per-image median.
    bump_version(image, version, status=ImageStatus.SKIPPED, locked_by=None, locked_until=None, work_seconds=None)


def _extended_lock(image: Image, user: AbstractBaseUser) -> dict:
    # Working on an image you hold keeps holding it; saving an unlabeled image opened from the grid
    # marks it in progress and yours, so the queue does not hand it to someone else meanwhile.
    if image.status == ImageStatus.UNLABELED:
        # Not handed out by the queue: no start time to measure the work from.
        return {"status": ImageStatus.IN_PROGRESS, "locked_by": user, "locked_until": lock_expiry(), "opened_at": None}
    if image.status == ImageStatus.IN_PROGRESS and image.locked_by_id == user.pk:
        return {"status": ImageStatus.IN_PROGRESS, "locked_by": user, "locked_until": lock_expiry()}
    return {}


def annotation_rows(
    image: Image, user: AbstractBaseUser, boxes: list[BoxIn], tag_label_ids: list[int]
) -> tuple[list[Box], list[ImageTag]]:
    """The Box and ImageTag rows that replace the image's, checked (labels of the project, boxes in
    the image, attributes the label defines), each keeping the source it had where it stays."""
    rows, tags, _ = _rows_and_before(image, user, boxes, tag_label_ids)
    return rows, tags


def _rows_and_before(
    image: Image, user: AbstractBaseUser, boxes: list[BoxIn], tag_label_ids: list[int]
) -> tuple[list[Box], list[ImageTag], _Before]:
    if len(boxes) > MAX_BOXES_PER_IMAGE:
        raise ValidationError(f"An image can hold at most {MAX_BOXES_PER_IMAGE} boxes.")
    specs = dict(_LABEL_ATTRIBUTES.rows(project_id=image.project_id))
    unknown = {b.label_id for b in boxes} | set(tag_label_ids)
    unknown -= set(specs)
    if unknown:
        raise ValidationError(f"Unknown label id(s) for this project: {sorted(unknown)}.")
    # A box that stays where an accepted box suggestion put it keeps its source ("model" or
    # "model_adjusted"): the client sends geometry only. Moved, resized or relabeled, it is
    # "model_adjusted" when the client says so (``BoxIn.adjusted``), for at most as many boxes as the
    # image held of the model's that no box keeps in place; else the person's.
    kept, kept_boxes, before = _kept_sources(image)
    geometries = [clip_box(b, image.width, image.height) for b in boxes]
    keys = [_box_key(b.label_id, *g.values()) for b, g in zip(boxes, geometries)]
    in_place = set(keys)
    spare = sum(1 for key, source in kept_boxes.items() if source in MODEL_BOX_SOURCES and key not in in_place)
    rows = []
    for b, geometry, key in zip(boxes, geometries, keys):
        source = kept_boxes.get(key, "human")
        if source == "human" and b.adjusted and spare > 0:
            source, spare = Source.MODEL_ADJUSTED.value, spare - 1
        rows.append(
            Box(
                image=image,
                label_id=b.label_id,
                author=user,
                source=source,
                attributes=values_clean(b.attributes, specs[b.label_id]),
                **geometry,
            )
        )
    # A tag that stays keeps where it came from (an accepted suggestion stays "model"), since the
    # client sends label ids only; a tag it adds is the person's.
    tags = [
        ImageTag(image=image, label_id=label_id, author=user, source=kept.get(label_id, "human"))
        for label_id in dict.fromkeys(tag_label_ids)
    ]
    return rows, tags, before
