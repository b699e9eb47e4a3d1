"""manage.py backup ARCHIVE.tar.gz : the database and the media files in one archive (docs/backup.md)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.services.backup import backup_write
from annotator.disk import disk_full


class Command(BaseCommand):
    help = "Write the database (as fixtures) and the media files to one .tar.gz archive."

    def add_arguments(self, parser):
        parser.add_argument("archive", type=Path)
        parser.add_argument(
            "--with-models",
            action="store_true",
            help="also MODEL_DIR (checkpoints, embeddings, caches); large, and can be recomputed",
        )

    def handle(self, *args, archive: Path, with_models: bool, **options):
        try:
            summary = backup_write(path=archive, with_models=with_models)
        except OSError as exc:
            if not disk_full(exc):
                raise
            raise CommandError(
                f"The disk filled up while the backup was written ({exc.strerror}); nothing was left behind "
                f"and no data changed. Free some space, or write the archive to another disk, and run it again."
            ) from None
        rows = sum(summary.rows.values())
        self.stdout.write(f"wrote {summary.path}: {rows} annotation rows, {summary.files} files")
