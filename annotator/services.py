"""Writes. Each service is keyword-only and typed; views, commands and tasks call these and
nothing else writes the annotation domain."""

from __future__ import annotations

import errno
import hashlib
import math
import os
import secrets
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from annotator import attributes as attributes_rules
from annotator.access import project_create_allowed
from annotator.imaging import ImageRejected, Limits, PreparedImage, prepare_image
from annotator.models import (HEX_COLOUR, Box, Image, ImageStatus, ImageTag, LabelBoxCount, LabelClass, Membership,
                              Project, ProjectStatusCount, Role, label_key)
from annotator.sources import ImageSource, Rejection

PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
           "#469990", "#9a6324", "#800000", "#000075")
# Keys the annotate page keeps for itself; a label cannot take them as its hotkey.
RESERVED_HOTKEYS = frozenset("fhsark?/+-= otdvwbcgxu")  # the annotate page's own keys (annotate/keys.js)


# ---------------------------------------------------------------------------------------------
# Projects and labels


def project_create(*, name: str, user: AbstractBaseUser, labels: Iterable[str] = (), description: str = "") -> Project:
    name = name.strip()
    if not name:
        raise ValidationError("Give the project a name.")
    if len(name) > 200:
        raise ValidationError(f"A project name can be at most 200 characters (this one has {len(name)}).")
    if "\x00" in name or "\x00" in description:
        raise ValidationError("The project's name and description cannot contain NUL characters.")
    project_create_allowed(user=user)
    with transaction.atomic():
        project = Project.objects.create(name=name, description=description, created_by=user)
        Membership.objects.create(user=user, project=project, role=Role.ADMIN)
        for label_name in labels:
            label_create(project=project, name=label_name)
    return project


def project_set_overlap(*, project: Project, percent: str | float) -> Project:
    """How much of the project two annotators label independently (0 to 100 percent)."""
    try:
        value = float(percent)
    except (TypeError, ValueError):
        raise ValidationError("The overlap is a percentage from 0 to 100.") from None
    if not 0 <= value <= 100:  # also refuses nan
        raise ValidationError("The overlap is a percentage from 0 to 100.")
    project.overlap_fraction = value / 100
    project.save(update_fields=["overlap_fraction"])
    return project


def label_create(*, project: Project, name: str, color: str = "", hotkey: str | None = None,
                 attributes: list | None = None) -> LabelClass:
    name = name.strip()
    count = project.labels.count()
    color = color or PALETTE[count % len(PALETTE)]
    if hotkey is None:  # the next free digit, 1..9 then 0
        used = set(project.labels.values_list("hotkey", flat=True))
        hotkey = next((k for k in "1234567890" if k not in used), "")
    label = LabelClass(project=project, name=name, color=color, hotkey=hotkey, order=count,
                       attributes=attributes_rules.specs_clean(attributes))
    _label_validate(label)
    _label_save(label)
    return label


def _label_save(label: LabelClass) -> None:
    """Save in a savepoint: a concurrent create of the same name or hotkey (which passed the
    checks before this one committed) is the database's unique constraint, answered as a 400."""
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError:
        raise ValidationError(f"A label called “{label.name}” (or with the hotkey “{label.hotkey}”) was just "
                              "created by someone else; reload and check the project's labels.") from None


def label_update(*, label: LabelClass, name: str, color: str, hotkey: str, order: int | None = None,
                 attributes: list | None = None) -> LabelClass:
    """``attributes``: the label's box attribute definitions; None keeps them. A box keeps values
    of an attribute since removed: they still export, and the next save of the box drops them."""
    label.name, label.color, label.hotkey = name.strip(), color, hotkey.strip().lower()
    if attributes is not None:
        label.attributes = attributes_rules.specs_clean(attributes)
    if order is not None:
        label.order = order
    _label_validate(label)
    _label_save(label)
    return label


def label_delete(*, label: LabelClass) -> None:
    boxes, tags = label.boxes.count(), label.tags.count()
    if boxes or tags:
        raise ValidationError(
            f"“{label.name}” is used by {boxes} boxes and {tags} image tags. Rename it, or remove those first.")
    label.delete()


# Characters a label name may not hold: invisible ones (format characters such as the zero-width
# space, controls, private use, unassigned, line and paragraph separators) make look-alikes of
# other names.
_INVISIBLE_CATEGORIES = {"Cf", "Cc", "Co", "Cn", "Zl", "Zp"}


def label_name_problem(name: str) -> str | None:
    """Why this (stripped) name cannot be a label's, or None."""
    if not name:
        return "A label needs a name."
    if len(name) > 100:
        return "A label name can be at most 100 characters."
    if any(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in name):
        return f"The label name {name!r} holds invisible or control characters; type it again without them."
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        # Fullwidth letters, ligatures, superscripts ...: a look-alike of the plain name.
        return f"Write the label name in plain characters: “{normal}” rather than “{name}”."
    return None


def _label_validate(label: LabelClass) -> None:
    problem = label_name_problem(label.name)
    if problem:
        raise ValidationError(problem)
    HEX_COLOUR(label.color)
    if len(label.hotkey) > 1:
        raise ValidationError("A hotkey is a single key.")
    if label.hotkey and label.hotkey in RESERVED_HOTKEYS:
        raise ValidationError(f"The key “{label.hotkey}” is taken by the annotator; choose another.")
    others = LabelClass.objects.filter(project_id=label.project_id).exclude(pk=label.pk)
    if others.filter(name_key=label_key(label.name)).exists():
        raise ValidationError(f"There is already a label called “{label.name}”.")
    if label.hotkey and others.filter(hotkey=label.hotkey).exists():
        raise ValidationError(f"The hotkey “{label.hotkey}” is already used by another label.")


# ---------------------------------------------------------------------------------------------
# Image import: one service for every entry point


@dataclass(frozen=True)
class Imported:
    name: str
    image_id: int


@dataclass
class ImportReport:
    imported: list[Imported] = field(default_factory=list)
    duplicates: list[Imported] = field(default_factory=list)  # image_id: the image already there
    rejected: list[Rejection] = field(default_factory=list)
    # Imported images whose file name another image of the project has too: an annotation file
    # that names them cannot say which one it means (exchange.ImageMatcher refuses such names).
    same_name: list[Imported] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return len(self.imported) + len(self.duplicates) + len(self.rejected)

    def as_dict(self) -> dict:
        return {
            "imported": [{"name": i.name, "id": i.image_id} for i in self.imported],
            "duplicates": [{"name": i.name, "id": i.image_id} for i in self.duplicates],
            "rejected": [{"name": r.name, "reason": r.reason} for r in self.rejected],
            "same_name": [{"name": i.name, "id": i.image_id} for i in self.same_name],
        }


class StorageFull(Exception):
    """The media storage refused a write for lack of space (HTTP 507); the batch left no file behind."""


def import_limits() -> Limits:
    return Limits(max_bytes=settings.IMAGE_MAX_BYTES, max_pixels=settings.IMAGE_MAX_PIXELS,
                  max_side=settings.IMAGE_MAX_SIDE, thumbnail_size=settings.THUMBNAIL_SIZE,
                  max_decode_bytes=settings.IMAGE_DECODE_MAX_MB * 2**20)


# At most this many images are decoded at once in one process: a decode can take hundreds of MB,
# so concurrent uploads queue here instead of multiplying the web worker's peak memory.
_DECODE_SLOTS = threading.BoundedSemaphore(settings.IMAGE_DECODES_PER_PROCESS)


def images_import(*, project: Project, sources: Iterable[ImageSource | Rejection],
                  on_progress: Callable[[ImportReport], None] | None = None, batch_size: int = 200) -> ImportReport:
    """Check, deduplicate and store images. Each image lands whole (file, thumbnail and row) or not
    at all; one bad file never stops the others. Rows are written in batches for speed.

    Cost bounds: a file is hashed before it is decoded, so a copy of an image already in the project
    (or earlier in this import) is never decoded; files are decoded one at a time and written to
    storage at once, so a batch holds rows, not image bytes; the project's and its creator's image
    quotas are checked before each decode."""
    limits = import_limits()
    report = ImportReport()
    quota = _ImageQuota(project)
    batch: list[Image] = []
    pending: dict[str, Image] = {}  # sha256 -> a row written to storage, not yet inserted
    later_copies: list[tuple[str, str]] = []  # (name, sha) of repeats of a pending row
    try:
        for source in sources:
            if isinstance(source, Rejection):
                report.rejected.append(source)
            else:
                row = _import_one(project, source, limits, quota, pending, later_copies, report)
                if row is not None:
                    batch.append(row)
                    pending[row.sha256] = row
            if len(batch) >= batch_size:
                _store_batch(project, batch, later_copies, report)
                batch, later_copies = [], []
                pending.clear()
            if on_progress:
                on_progress(report)
    except BaseException as error:
        for row in batch:  # written to storage, never inserted: no row may point at them, so remove them
            _delete_files(row)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(f"The image store is full: {len(report.imported)} image(s) of this upload were stored "
                              "before it filled, the rest were not. Free some space (or ask the administrator to), "
                              "then upload the rest again.") from error
        raise
    if batch or later_copies:
        _store_batch(project, batch, later_copies, report)
        if on_progress:
            on_progress(report)
    return report


class _ImageQuota:
    """PROJECT_MAX_IMAGES per project and USER_MAX_IMAGES over the projects one person created,
    counted once per import and then kept up to date as rows are written."""

    def __init__(self, project: Project) -> None:
        self.project_left = settings.PROJECT_MAX_IMAGES - Image.objects.filter(project=project).count()
        self.user_left = (settings.USER_MAX_IMAGES - Image.objects.filter(project__created_by_id=project.created_by_id)
                          .count()) if project.created_by_id else math.inf

    def refusal(self) -> str | None:
        if self.project_left <= 0:
            return (f"the project holds its limit of {settings.PROJECT_MAX_IMAGES:,} images "
                    "(PROJECT_MAX_IMAGES); start another project or ask the server's admin")
        if self.user_left <= 0:
            return (f"the projects of this project's creator hold their limit of {settings.USER_MAX_IMAGES:,} images "
                    "(USER_MAX_IMAGES); ask the server's admin")
        return None

    def take(self) -> None:
        self.project_left -= 1
        self.user_left -= 1


def _import_one(project: Project, source: ImageSource, limits: Limits, quota: _ImageQuota,
                pending: dict[str, Image], later_copies: list[tuple[str, str]], report: ImportReport) -> Image | None:
    """Read, hash, then (only when the image is new) decode and store one file; None when it was
    reported as a duplicate or a rejection."""
    try:
        data = source.read()
    except OSError as error:
        report.rejected.append(Rejection(source.name, f"could not read the file ({error.strerror or error})"))
        return None
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 in pending:
        later_copies.append((source.name, sha256))
        return None
    existing = Image.objects.filter(project=project, sha256=sha256).values_list("id", flat=True).first()
    if existing is not None:
        report.duplicates.append(Imported(source.name, existing))
        return None
    refusal = quota.refusal()
    if refusal:
        report.rejected.append(Rejection(source.name, refusal))
        return None
    if not _DECODE_SLOTS.acquire(timeout=settings.IMAGE_DECODE_WAIT_SECONDS):
        report.rejected.append(Rejection(source.name, "the server is busy decoding other uploads; try again shortly"))
        return None
    try:
        prepared = prepare_image(data, limits)
    except ImageRejected as error:
        report.rejected.append(Rejection(source.name, str(error)))
        return None
    finally:
        _DECODE_SLOTS.release()
    del data  # the upload's bytes: only the prepared image (and then its row) is kept
    quota.take()
    return _write_files(project, source.name, prepared)


def _store_batch(project: Project, rows: list[Image], later_copies: list[tuple[str, str]],
                 report: ImportReport) -> None:
    """Insert rows whose files are already in storage; a copy of a pending row is reported as a
    duplicate of whichever row won."""
    try:
        with transaction.atomic():
            Image.objects.bulk_create(rows)
            status_counts_change(project_id=project.id, changes={ImageStatus.UNLABELED: len(rows)})
        stored = rows
    except IntegrityError:
        # Someone imported some of the same images meanwhile: fall back to one row at a time.
        stored = _store_one_by_one(rows, report)
    except BaseException:
        for row in rows:
            _delete_files(row)
        raise
    ids = {}
    for row in stored:
        ids[row.sha256] = row.id
        report.imported.append(Imported(row.original_name, row.id))
    _note_same_names(project, stored, report)
    for name, sha in later_copies:
        other = ids.get(sha) or Image.objects.filter(project=project, sha256=sha).values_list("id", flat=True).first()
        if other:
            report.duplicates.append(Imported(name, other))
        else:
            report.rejected.append(Rejection(name, "a copy of this image could not be stored"))


def _note_same_names(project: Project, stored: list[Image], report: ImportReport) -> None:
    names = {row.original_name for row in stored}
    if not names:
        return
    shared = set(Image.objects.filter(project=project, original_name__in=names).values("original_name")
                 .annotate(n=Count("id")).filter(n__gt=1).values_list("original_name", flat=True).order_by())
    report.same_name += [Imported(row.original_name, row.id) for row in stored if row.original_name in shared]


def _store_one_by_one(rows: list[Image], report: ImportReport) -> list[Image]:
    stored = []
    for row in rows:
        try:
            with transaction.atomic():
                row.save()
                status_counts_change(project_id=row.project_id, changes={ImageStatus.UNLABELED: 1})
            stored.append(row)
        except IntegrityError:
            _delete_files(row)
            other = Image.objects.filter(project_id=row.project_id, sha256=row.sha256).values_list("id", flat=True)
            report.duplicates.append(Imported(row.original_name, other.first()))
    return stored


def _write_files(project: Project, name: str, prepared: PreparedImage) -> Image:
    # A random token keeps two concurrent imports of the same file from sharing (and deleting) a path.
    stem = f"projects/{project.id}/{{kind}}/{prepared.sha256[:2]}/{prepared.sha256[:16]}-{secrets.token_hex(4)}"
    image_name = default_storage.save(f"{stem.format(kind='images')}.{prepared.extension}", ContentFile(prepared.data))
    try:
        thumb_name = default_storage.save(f"{stem.format(kind='thumbs')}.jpg", ContentFile(prepared.thumbnail))
    except BaseException:
        default_storage.delete(image_name)
        raise
    return Image(project=project, file=image_name, thumbnail=thumb_name, original_name=name[-255:],
                 width=prepared.width, height=prepared.height, size_bytes=len(prepared.data), sha256=prepared.sha256)


def _delete_files(row: Image) -> None:
    for name in (row.file.name, row.thumbnail.name):
        if name:
            default_storage.delete(name)


# ---------------------------------------------------------------------------------------------
# Annotations from elsewhere (the demo's ground truth; later COCO, YOLO, Label Studio imports)


@dataclass(frozen=True)
class BoxIn:
    label_id: int
    x: float
    y: float
    w: float
    h: float
    attributes: dict = field(default_factory=dict, hash=False, compare=False)  # annotator/attributes.py


@dataclass(frozen=True)
class ImageAnnotations:
    image_id: int
    boxes: tuple[BoxIn, ...] = ()
    tag_label_ids: tuple[int, ...] = ()


def annotations_import(*, project: Project, items: Iterable[ImageAnnotations], user: AbstractBaseUser | None,
                       source: str = "human") -> int:
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
            boxes.append(Box(image=image, label_id=box.label_id, author=user, source=source, attributes=values,
                             **clip_box(box, image.width, image.height)))
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
        Image.objects.filter(id__in=images).update(status=ImageStatus.SUBMITTED, submitted_by=user,
                                                   submitted_at=timezone.now(), version=F("version") + 1,
                                                   **annotation_counts())
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
        return Coalesce(Subquery(queryset.filter(image=OuterRef("pk")).order_by().values("image")
                                 .annotate(n=Count("id")).values("n")[:1]), Value(0))

    return {"box_count": count(Box.objects.all()), "human_tag_count": count(ImageTag.objects.filter(source="human"))}


# ---------------------------------------------------------------------------------------------
# Status counters
#
# Every write that changes how many images a project has in a status moves its counters in the same
# transaction. The call sites: _store_batch and _store_one_by_one (import: + unlabeled),
# annotations_import (-> submitted), and in annotator.annotations: _bump_version (submit, skip, and
# a save that takes an unlabeled image in progress), queue_next (release -> unlabeled, claim ->
# in progress). Anything else that changes Image.status must call status_counts_change too.


def status_counts_change(*, project_id: int, changes: dict[str, int]) -> None:
    """Add these deltas to the project's per-status counters (inside the caller's transaction).

    Each status is kept in STATUS_COUNT_SHARDS rows, summed on read: a request updates the rows of
    its own shard (fixed per process and thread), so concurrent submits in one project do not all
    queue on one row lock. Rows are updated in status order, so two transactions never take the
    same two rows in opposite orders."""
    shard = _counter_shard()
    for status, delta in sorted(changes.items()):
        if not delta:
            continue
        counter = ProjectStatusCount.objects.filter(project_id=project_id, status=status, shard=shard)
        if counter.update(count=F("count") + delta):
            continue
        try:
            with transaction.atomic():  # a savepoint: losing the race to create the row is fine
                ProjectStatusCount.objects.create(project_id=project_id, status=status, shard=shard, count=delta)
        except IntegrityError:
            counter.update(count=F("count") + delta)


def _counter_shard() -> int:
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
        counts.update(Image.objects.filter(project_id=project_id).values_list("status").annotate(n=Count("id"))
                      .order_by())
        ProjectStatusCount.objects.filter(project_id=project_id).exclude(shard=0).update(count=0)
        for status, n in counts.items():
            ProjectStatusCount.objects.filter(project_id=project_id, status=status, shard=0).update(count=n)
    return counts


# ---------------------------------------------------------------------------------------------
# Boxes per label
#
# Like the status counters: every write that adds or removes boxes moves LabelBoxCount in the same
# transaction, after the status counters (one order everywhere, so no lock cycles). The call sites:
# annotations_import here, and in annotator.annotations: annotation_save and the overlap first pass
# (which empties the image). Deleting a label or project cascades to its counters; a box can't lose
# its label otherwise (PROTECT). Anything else that writes Box rows must call label_box_counts_change.


def label_box_deltas(*, image_ids: list[int], new_label_ids: Iterable[int]) -> dict[int, int]:
    """{label id: boxes after - boxes before} when these images' boxes are replaced by boxes of
    ``new_label_ids`` (one per box). One grouped query over the images' boxes (index box_image_label)."""
    deltas: dict[int, int] = {}
    for label_id in new_label_ids:
        deltas[label_id] = deltas.get(label_id, 0) + 1
    if image_ids:
        for label_id, n in (Box.objects.filter(image_id__in=image_ids).values_list("label_id")
                            .annotate(n=Count("id")).order_by()):
            deltas[label_id] = deltas.get(label_id, 0) - n
    return {label_id: d for label_id, d in deltas.items() if d}


def label_box_counts_change(*, changes: dict[int, int]) -> None:
    """Add these deltas to the labels' box counters (inside the caller's transaction), in this
    process-and-thread's shard, in label order."""
    shard = _counter_shard()
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
        counts.update(Box.objects.filter(label_id__in=label_ids).values_list("label_id").annotate(n=Count("id"))
                      .order_by())
        LabelBoxCount.objects.filter(label_id__in=label_ids).exclude(shard=0).update(count=0)
        for label_id, n in counts.items():
            LabelBoxCount.objects.filter(label_id=label_id, shard=0).update(count=n)
    return counts


def clip_box(box: BoxIn, width: int, height: int) -> dict[str, float]:
    values = (box.x, box.y, box.w, box.h)
    if not all(math.isfinite(v) for v in values):
        raise ValidationError("Box coordinates must be finite numbers.")
    x0, y0 = max(0.0, box.x), max(0.0, box.y)
    x1, y1 = min(float(width), box.x + box.w), min(float(height), box.y + box.h)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        raise ValidationError(f"The box {values} lies outside the {width}×{height} image or has no area.")
    return {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}


# ---------------------------------------------------------------------------------------------
# Members: admins add people by user name, change roles and remove them; a project keeps an admin.


def member_add(*, project: Project, username: str, role: str, by: AbstractBaseUser | None = None) -> Membership:
    """Add an account by its user name. Whether a name exists shows in the answer, so the names
    with no (active) account that one admin (``by``) tries are limited to MEMBER_ADD_MISSES_PER_HOUR."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from annotator.access import LimitReached

    _role_check(role)
    misses_key = f"member-add-misses:{by.pk if by is not None else 0}"
    if by is not None and cache.get(misses_key, 0) >= settings.MEMBER_ADD_MISSES_PER_HOUR:
        raise LimitReached(f"You tried {settings.MEMBER_ADD_MISSES_PER_HOUR} user names without an account in the "
                           "last hour (MEMBER_ADD_MISSES_PER_HOUR); ask the person for their exact user name and "
                           "try again later.")
    user = get_user_model().objects.filter(username=username.strip(), is_active=True).first()
    if user is None:
        if by is not None and not cache.add(misses_key, 1, 3600):
            cache.incr(misses_key)
        # The same answer for a name with no account and for a disabled account.
        raise ValidationError(f"There is no user called “{username.strip()}”; they need an account first.")
    membership, created = Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if not created:
        raise ValidationError(f"{user.get_username()} is already a member ({membership.role}); change their role instead.")
    return membership


def member_set_role(*, membership: Membership, role: str) -> Membership:
    _role_check(role)
    with transaction.atomic():
        if role != Role.ADMIN:
            _keep_an_admin(membership)
        Membership.objects.filter(pk=membership.pk).update(role=role)
    membership.role = role
    return membership


def member_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        _keep_an_admin(membership)
        membership.delete()


def _role_check(role: str) -> None:
    if role not in Role.values:
        raise ValidationError(f"Unknown role “{role}”; use one of {', '.join(Role.values)}.")


def _keep_an_admin(membership: Membership) -> None:
    # The admins' rows are locked, so two admins demoting each other at once cannot both succeed.
    admins = list(Membership.objects.select_for_update().filter(project_id=membership.project_id, role=Role.ADMIN)
                  .values_list("pk", flat=True))
    if admins == [membership.pk]:
        raise ValidationError("A project needs at least one admin: make someone else admin first.")
