"""manage.py import_images PROJECT PATH... : folders (recursive), zip files and image files."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotator.models import Project
from annotator.services.images import images_import, ImportReport, StorageFull
from annotator.sources import sources_from_paths


class Command(BaseCommand):
    help = "Import images into a project from folders (recursive), .zip files or single files."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or exact name")
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
        parser.add_argument(
            "--threads",
            type=int,
            default=min(4, os.cpu_count() or 1),
            help="images decoded at once (default: the cores, at most 4; each may take IMAGE_DECODE_MAX_MB)",
        )

    def handle(self, *args, project: str, paths: list[Path], no_progress: bool, threads: int, **options):
        if not 1 <= threads <= 64:
            raise CommandError("--threads must be between 1 and 64")
        target = _find_project(project)
        bar = tqdm(unit="img", disable=no_progress, desc=f"Importing into {target.name}")

        def progress(report: ImportReport) -> None:
            bar.update(report.seen - bar.n)

        sources = sources_from_paths(paths, max_bytes=settings.IMAGE_MAX_BYTES, max_total=settings.ZIP_MAX_TOTAL_BYTES)
        try:
            report = images_import(project=target, sources=sources, on_progress=progress, decode_threads=threads)
        except StorageFull as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()
        self.stdout.write(
            f"{len(report.imported)} imported, {len(report.duplicates)} duplicates, {len(report.rejected)} rejected"
        )
        for rejection in report.rejected:
            self.stdout.write(f"  rejected {rejection.name}: {rejection.reason}")
        for same in report.same_name:
            self.stdout.write(f"  {same.name} (image {same.image_id}): another image of the project has this name")
        if report.rejected and not report.imported and not report.duplicates:
            raise CommandError("nothing was imported")


def _find_project(key: str) -> Project:
    project = Project.objects.filter(pk=int(key)).first() if key.isdigit() else None
    project = project or Project.objects.filter(name=key).first()
    if project is None:
        raise CommandError(f"no project with id or name {key!r}")
    return project
