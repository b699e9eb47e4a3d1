"""Image import: one service for every entry point (upload, folder, zip, command, demo)."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count

from annotator.disk import disk_full
from annotator.imaging import ImageRejected, Limits, PreparedImage, prepare_image
from annotator.models import Image, ImageStatus, Project
from annotator.services.status_counts import status_counts_change
from annotator.sources import ImageSource, Rejection


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
    return Limits(
        max_bytes=settings.IMAGE_MAX_BYTES,
        max_pixels=settings.IMAGE_MAX_PIXELS,
        max_side=settings.IMAGE_MAX_SIDE,
        thumbnail_size=settings.THUMBNAIL_SIZE,
        max_decode_bytes=settings.IMAGE_DECODE_MAX_MB * 2**20,
    )


# At most this many images are decoded at once in one process: a decode can take hundreds of MB,
# so concurrent uploads queue here instead of multiplying the web worker's peak memory.
_DECODE_SLOTS = threading.BoundedSemaphore(settings.IMAGE_DECODES_PER_PROCESS)


def images_import(
    *,
    project: Project,
    sources: Iterable[ImageSource | Rejection],
    on_progress: Callable[[ImportReport], None] | None = None,
    batch_size: int = 200,
    decode_threads: int = 1,
) -> ImportReport:
    """Check, deduplicate and store images. Each image lands whole (file, thumbnail and row) or not
    at all; one bad file never stops the others. Rows are written in batches for speed.

    Cost bounds: a file is hashed before it is decoded, so a copy of an image already in the project
    (or earlier in this import) is never decoded; files are decoded one at a time and written to
    storage at once, so a batch holds rows, not image bytes; the project's and its creator's image
    quotas are checked before each decode.

    ``decode_threads`` > 1 (a process that does nothing else: manage.py import_images) decodes that
    many images at once, in threads (Pillow decodes and encodes without the GIL), with at most twice
    as many read ahead; the report, the rows and the files are the same as one at a time. The web's
    uploads keep 1, bounded per process by IMAGE_DECODES_PER_PROCESS."""
    if decode_threads > 1:
        return _images_import_threaded(project, sources, on_progress, batch_size, decode_threads)
    limits = import_limits()
    report = ImportReport()
    quota = _ImageQuota(project)
    batch: list[Image] = []
    pending: dict[str, Image] = {}  # sha256 -> a row written to storage, not yet inserted
    later_copies: list[tuple[str, str]] = []  # (name, sha) of repeats of a pending row
    refused: dict[str, str] = {}  # sha256 -> why: a copy of a refused file is refused without a decode
    try:
        for source in sources:
            if isinstance(source, Rejection):
                report.rejected.append(source)
            else:
                row = _import_one(project, source, limits, quota, pending, later_copies, refused, report)
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
        _raise_if_storage_full(error, report)
        raise
    return _store_last(project, batch, later_copies, report, on_progress)


def _images_import_threaded(
    project: Project,
    sources: Iterable[ImageSource | Rejection],
    on_progress: Callable[[ImportReport], None] | None,
    batch_size: int,
    threads: int,
) -> ImportReport:
    """images_import with the decodes in a pool of ``threads``: each source is read, hashed, checked
    for duplicates and against the quotas in this thread, in order (as one at a time does); only the
    decode runs in the pool; results are taken in source order, so files are written and rows batched
    by this thread alone. A copy of an image still being decoded waits for it: a duplicate of it when
    it is stored, refused with it when it is refused."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    limits = import_limits()
    report = ImportReport()
    quota = _ImageQuota(project)
    batch: list[Image] = []
    pending: dict[str, Image] = {}
    later_copies: list[tuple[str, str]] = []
    decoding: dict[str, list[str]] = {}  # sha256 of an image in the pool -> names of its copies since
    refused: dict[str, str] = {}  # sha256 -> why
    ahead: deque[tuple[str, str, Future]] = deque()  # (name, sha256, decode) in source order

    def take_oldest() -> None:
        nonlocal batch, later_copies
        name, sha256, decode = ahead.popleft()
        copies = decoding.pop(sha256)
        try:
            prepared = decode.result()
        except ImageRejected as error:
            quota.give_back()
            refused[sha256] = str(error)
            report.rejected += [Rejection(n, str(error)) for n in (name, *copies)]
        else:
            row = _write_files(project, name, prepared)
            batch.append(row)
            pending[sha256] = row
            later_copies += [(n, sha256) for n in copies]
        if len(batch) >= batch_size:
            _store_batch(project, batch, later_copies, report)
            batch, later_copies = [], []
            pending.clear()
        if on_progress:
            on_progress(report)

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="image-decode")
    try:
        for source in sources:
            if isinstance(source, Rejection):
                report.rejected.append(source)
                continue
            admitted = _admit(project, source, quota, pending, later_copies, decoding, refused, report)
            if admitted is None:
                continue
            data, sha256 = admitted
            quota.take()  # held while it decodes; given back if it is refused
            decoding[sha256] = []
            ahead.append((source.name, sha256, pool.submit(prepare_image, data, limits)))
            del data
            while len(ahead) >= 2 * threads:
                take_oldest()
        while ahead:
            take_oldest()
    except BaseException as error:
        pool.shutdown(wait=True, cancel_futures=True)  # decodes in flight wrote nothing: only batch did
        for row in batch:
            _delete_files(row)
        _raise_if_storage_full(error, report)
        raise
    pool.shutdown(wait=True)
    return _store_last(project, batch, later_copies, report, on_progress)


def _admit(
    project: Project,
    source: ImageSource,
    quota: _ImageQuota,
    pending: dict[str, Image],
    later_copies: list[tuple[str, str]],
    decoding: dict[str, list[str]],
    refused: dict[str, str],
    report: ImportReport,
) -> tuple[bytes, str] | None:
    """Read and hash one file; (its bytes, sha256) when it is new and within the quotas, else None
    with the report (or the copies of an image being decoded) told why. A copy of a file this import
    refused is refused for the same reason, without a second decode."""
    try:
        data = source.read()
    except OSError as error:
        report.rejected.append(Rejection(source.name, f"could not read the file ({error.strerror or error})"))
        return None
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 in decoding:
        decoding[sha256].append(source.name)
        return None
    if sha256 in refused:
        report.rejected.append(Rejection(source.name, refused[sha256]))
        return None
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
    return data, sha256


def _raise_if_storage_full(error: BaseException, report: ImportReport) -> None:
    if disk_full(error):
        raise StorageFull(
            f"The image store is full: {len(report.imported)} image(s) of this upload were stored "
            "before it filled, the rest were not. Free some space (or ask the administrator to), "
            "then upload the rest again."
        ) from error


def _store_last(
    project: Project,
    batch: list[Image],
    later_copies: list[tuple[str, str]],
    report: ImportReport,
    on_progress: Callable[[ImportReport], None] | None,
) -> ImportReport:
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
        self.user_left = (
            (settings.USER_MAX_IMAGES - Image.objects.filter(project__created_by_id=project.created_by_id).count())
            if project.created_by_id
            else math.inf
        )

    def refusal(self) -> str | None:
        if self.project_left <= 0:
            return (
                f"the project holds its limit of {settings.PROJECT_MAX_IMAGES:,} images "
                "(PROJECT_MAX_IMAGES); start another project or ask the server's admin"
            )
        if self.user_left <= 0:
            return (
                f"the projects of this project's creator hold their limit of {settings.USER_MAX_IMAGES:,} images "
                "(USER_MAX_IMAGES); ask the server's admin"
            )
        return None

    def take(self) -> None:
        self.project_left -= 1
        self.user_left -= 1

    def give_back(self) -> None:
        self.project_left += 1
        self.user_left += 1


def _import_one(
    project: Project,
    source: ImageSource,
    limits: Limits,
    quota: _ImageQuota,
    pending: dict[str, Image],
    later_copies: list[tuple[str, str]],
    refused: dict[str, str],
    report: ImportReport,
) -> Image | None:
    """Read, hash, then (only when the image is new) decode and store one file; None when it was
    reported as a duplicate or a rejection."""
    admitted = _admit(project, source, quota, pending, later_copies, {}, refused, report)
    if admitted is None:
        return None
    data, sha256 = admitted
    if not _DECODE_SLOTS.acquire(timeout=settings.IMAGE_DECODE_WAIT_SECONDS):
        report.rejected.append(Rejection(source.name, "the server is busy decoding other uploads; try again shortly"))
        return None
    try:
        prepared = prepare_image(data, limits)
    except ImageRejected as error:
        refused[sha256] = str(error)
        report.rejected.append(Rejection(source.name, str(error)))
        return None
    finally:
        _DECODE_SLOTS.release()
    del data  # the upload's bytes: only the prepared image (and then its row) is kept
    quota.take()
    return _write_files(project, source.name, prepared)


def _store_batch(
    project: Project, rows: list[Image], later_copies: list[tuple[str, str]], report: ImportReport
) -> None:
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
    shared = set(
        Image.objects.filter(project=project, original_name__in=names)
        .values("original_name")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("original_name", flat=True)
        .order_by()
    )
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
    return Image(
        project=project,
        file=image_name,
        thumbnail=thumb_name,
        original_name=name[-255:],
        width=prepared.width,
        height=prepared.height,
        size_bytes=len(prepared.data),
        sha256=prepared.sha256,
    )


def _delete_files(row: Image) -> None:
    for name in (row.file.name, row.thumbnail.name):
        if name:
            default_storage.delete(name)
