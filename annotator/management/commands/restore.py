"""manage.py restore ARCHIVE.tar.gz [--force] : replace the database and media with a backup's."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.services.backup import backup_restore, BackupError


class Command(BaseCommand):
    help = "Restore a backup written by `manage.py backup`: database and media, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("archive", type=Path)
        parser.add_argument("--force", action="store_true", help="replace a database that already holds projects")

    def handle(self, *args, archive: Path, force: bool, **options):
        try:
            manifest = backup_restore(path=archive, force=force)
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"restored {archive} (written {manifest['created_at']} from {manifest['database']})")
