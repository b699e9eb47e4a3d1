"""Deleting a whole project: its rows (every table that hangs off it) and its files (images,
thumbnails, export files, and what model assistance keeps: its rows, runs and image cache).

Boxes and tags are deleted first because their label link is PROTECT (a label in use must never
disappear under people's work); once the project itself goes, nothing is left to protect. The files
go after the commit: a rolled-back delete must not have removed anything, and a file left behind by
a crash between the two is an orphan that ``manage.py media_gc`` finds."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from django.core.files.storage import default_storage
from django.db import transaction

from annotator import extensions
from annotator.models import Box, ExportJob, Image, ImageTag, LabelClass, Membership, Project, Review


def project_delete_counts(*, project: Project) -> dict[str, int]:
    """What deleting the project removes, for the confirmation that names it."""
    counts = {
        "images": Image.objects.filter(project=project).count(),
        "boxes": Box.objects.filter(image__project=project).count(),
        "tags": ImageTag.objects.filter(image__project=project).count(),
        "labels": LabelClass.objects.filter(project=project).count(),
        "reviews": Review.objects.filter(image__project=project).count(),
        "members": Membership.objects.filter(project=project).count(),
    }
    for dependent in extensions.PROJECT_DEPENDENTS:  # model assistance: runs, suggestions
        counts.update(dependent.counts(project_id=project.id))
    counts["exports"] = ExportJob.objects.filter(project=project).count()
    return counts


def project_delete_summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {what}" for what, n in counts.items())


def project_delete(*, project: Project) -> dict[str, int]:
    """Delete the project, every row that belongs to it and, once that commits, its files.
    Returns the counts of what was deleted."""
    project_id = project.id
    counts = project_delete_counts(project=project)
    others_files = [dependent.files_delete(project_id=project_id) for dependent in extensions.PROJECT_DEPENDENTS]
    with transaction.atomic():
        # What PROTECT guards goes first; one DELETE each (neither table has dependants or signals,
        # so Django deletes them without loading a row).
        Box.objects.filter(image__project_id=project_id).delete()
        ImageTag.objects.filter(image__project_id=project_id).delete()
        Project.objects.filter(pk=project_id).delete()
        transaction.on_commit(lambda: project_files_delete(project_id=project_id, others=others_files))
    return counts


def project_files_delete(*, project_id: int, others: Iterable[Callable[[], None]] = ()) -> None:
    """Every file the project had: media under ``projects/<id>/`` and ``exports/<id>/`` (where the
    services put them), then what other apps keep (``others``, from extensions.PROJECT_DEPENDENTS:
    model assistance's runs and image cache under MODEL_DIR)."""
    for prefix in (f"projects/{project_id}", f"exports/{project_id}"):
        storage_delete_tree(prefix)
    for delete in others:
        delete()


def storage_delete_tree(prefix: str) -> None:
    """Delete every file under ``prefix`` in the media storage (local folders or S3 keys alike)."""
    try:
        local = Path(default_storage.path(prefix))
    except NotImplementedError:  # a remote storage (S3): list and delete
        local = None
    if local is not None:
        shutil.rmtree(local, ignore_errors=True)
        return
    try:
        dirs, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(f"{prefix}/{name}")
    for name in dirs:
        storage_delete_tree(f"{prefix}/{name}")
