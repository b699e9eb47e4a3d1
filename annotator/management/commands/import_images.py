"""manage.py import_images PROJECT PATH... : folders (recursive), zip files and image files; or
PROJECT s3://bucket/prefix: the bucket's new objects (annotator/services/buckets.py), in this process."""

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
        parser.add_argument("paths", nargs="+", help="folders, zips, images; or one s3://bucket/prefix")
        parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
        parser.add_argument(
            "--threads",
            type=int,
            default=min(4, os.cpu_count() or 1),
            help="images decoded at once (default: the cores, at most 4; each may take IMAGE_DECODE_MAX_MB)",
        )
        parser.add_argument("--endpoint-url", default="", help="s3://: an S3-compatible endpoint of BUCKET_ENDPOINTS")
        parser.add_argument("--region", default="")
        parser.add_argument("--credentials", default="", help="s3://: a credential set of BUCKET_CREDENTIALS")
        parser.add_argument(
            "--sync-minutes", type=int, default=None, help="s3://: also sync every N minutes (the workers' sweep)"
        )

    def handle(self, *args, project: str, paths: list[str], no_progress: bool, threads: int, **options):
        if not 1 <= threads <= 64:
            raise CommandError("--threads must be between 1 and 64")
        target = _find_project(project)
        if any(p.startswith("s3://") for p in paths):
            if len(paths) != 1:
                raise CommandError("give one s3://bucket/prefix, without local paths")
            return self._bucket(target, paths[0], no_progress, **options)
        self._paths(target, [Path(p) for p in paths], no_progress, threads)

    def _bucket(self, target: Project, url: str, no_progress: bool, **options) -> None:
        from django.core.exceptions import ValidationError

        from annotator.models import BucketImport, ExportStatus
        from annotator.services import buckets
        from annotator.services.bucket_import import bucket_import_execute

        try:
            source = buckets.bucket_source_save(
                project=target,
                url=url,
                user=None,
                endpoint_url=options["endpoint_url"],
                region=options["region"],
                credentials=options["credentials"],
                sync_minutes=options["sync_minutes"],
            )
            job = buckets.bucket_import_start(source=source, user=None, send=False)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except buckets.BucketImportInProgress as busy:
            raise CommandError(f"{busy}: an import of {url} is under way; wait for it") from None
        bar = tqdm(unit="obj", disable=no_progress, desc=f"Importing {url} into {target.name}")
        try:
            bucket_import_execute(job_id=job.id, on_progress=lambda j: bar.update(j.listed - bar.n))
        except Exception:
            job = BucketImport.objects.get(pk=job.id)
            raise CommandError(f"the import failed: {job.error}") from None
        finally:
            bar.close()
        job = BucketImport.objects.get(pk=job.id)
        self.stdout.write(
            f"{job.listed} listed: {job.imported} imported, {job.duplicates} duplicates, {job.skipped} skipped "
            f"(taken in before), {job.ignored} not images, {job.refused} refused"
        )
        for refusal in job.refusals:
            self.stdout.write(f"  refused {refusal['key']}: {refusal['reason']}")
        if job.status != ExportStatus.SUCCEEDED:
            raise CommandError(job.error or "the import did not finish")

    def _paths(self, target: Project, paths: list[Path], no_progress: bool, threads: int) -> None:
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
