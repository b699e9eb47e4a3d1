"""Unreferenced media files: image and thumbnail files no Image row names (left by a web worker
killed between writing the files and committing the rows, or by a crash between a project's
deletion and its files'), and export files no ExportJob names. ``manage.py media_gc`` lists them
(``--delete`` deletes them), and the workers' sweep deletes them every MEDIA_GC_SECONDS.

Only files older than MEDIA_GC_GRACE_SECONDS count: an upload in flight writes its files before it
commits its rows, and must not lose them. Files are laid out by the services as
``projects/<project>/{images,thumbs}/<sha[:2]>/<sha[:16]>-<token>.<ext>`` and ``exports/<project>/...``;
each ``<sha[:2]>`` folder is checked against one range of the (project, sha256) index, so memory
stays bounded at any project size."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage

from annotator.models import ExportJob, Image

log = logging.getLogger(__name__)


@dataclass
class GcReport:
    orphans: list[str] = field(default_factory=list)
    bytes: int = 0
    deleted: int = 0
    too_young: int = 0  # unreferenced, but within the grace period

    def as_dict(self) -> dict:
        return {"orphans": len(self.orphans), "bytes": self.bytes, "deleted": self.deleted, "too_young": self.too_young}


def media_gc(*, delete: bool = False, grace_seconds: int | None = None) -> GcReport:
    grace = settings.MEDIA_GC_GRACE_SECONDS if grace_seconds is None else grace_seconds
    cutoff = datetime.now(UTC) - timedelta(seconds=grace)
    report = GcReport()
    for name in _unreferenced():
        try:
            modified = default_storage.get_modified_time(name)
        except (FileNotFoundError, OSError):
            continue  # deleted meanwhile
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        if modified > cutoff:
            report.too_young += 1
            continue
        report.orphans.append(name)
        try:
            report.bytes += default_storage.size(name)
        except OSError:
            pass
        if delete:
            default_storage.delete(name)
            report.deleted += 1
    return report


def _unreferenced() -> Iterator[str]:
    for project in _listdir("projects")[0]:
        if not project.isdigit():
            continue
        kinds = _listdir(f"projects/{project}")[0]
        prefixes = sorted({p for kind in kinds for p in _listdir(f"projects/{project}/{kind}")[0]})
        for prefix in prefixes:
            known = set()
            # Digits sort before letters and "g" after "f" in every collation: one index range.
            for file, thumb in Image.objects.filter(
                project_id=int(project), sha256__gte=prefix, sha256__lt=prefix + "g"
            ).values_list("file", "thumbnail"):
                known.update((file, thumb))
            for kind in kinds:
                folder = f"projects/{project}/{kind}/{prefix}"
                yield from (f"{folder}/{name}" for name in _listdir(folder)[1] if f"{folder}/{name}" not in known)
    for project in _listdir("exports")[0]:
        folder = f"exports/{project}"
        known = set(ExportJob.objects.filter(file__startswith=folder + "/").values_list("file", flat=True))
        yield from (f"{folder}/{name}" for name in _listdir(folder)[1] if f"{folder}/{name}" not in known)


def _listdir(path: str) -> tuple[list[str], list[str]]:
    try:
        return default_storage.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return [], []


_last_run = -1e12  # monotonic seconds; far past: the first sweep runs it


def media_gc_periodic() -> dict | None:
    """The sweep's step: at most every MEDIA_GC_SECONDS per worker, deleting."""
    global _last_run
    if not settings.MEDIA_GC_SECONDS or time.monotonic() - _last_run < settings.MEDIA_GC_SECONDS:
        return None
    _last_run = time.monotonic()
    report = media_gc(delete=True)
    if report.deleted:
        log.warning("media_gc: deleted %s unreferenced files (%s bytes)", report.deleted, report.bytes)
    return report.as_dict()
