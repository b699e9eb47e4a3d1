"""Find media files no row refers to (orphans of killed uploads or interrupted deletions).

    python manage.py media_gc            # list them (dry run)
    python manage.py media_gc --delete   # delete them
    python manage.py media_gc --grace 600

Only files older than the grace period (MEDIA_GC_GRACE_SECONDS, default an hour) count, so uploads
in flight are safe. The workers' sweep runs the same deletion every MEDIA_GC_SECONDS.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from annotator.services.media_gc import media_gc


class Command(BaseCommand):
    help = "List (or --delete) media files that no image, thumbnail or export row refers to."

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="delete them (default: only list them)")
        parser.add_argument(
            "--grace", type=int, metavar="SECONDS", help="only files older than this (default: MEDIA_GC_GRACE_SECONDS)"
        )

    def handle(self, *args, delete: bool, grace: int | None, **options):
        report = media_gc(delete=delete, grace_seconds=grace)
        for name in report.orphans:
            self.stdout.write(name)
        verb = "deleted" if delete else "found (dry run: --delete deletes them)"
        self.stderr.write(
            f"{len(report.orphans)} unreferenced files, {report.bytes} bytes, {verb}; "
            f"{report.too_young} more are younger than the grace period."
        )
