"""Delete background export files (and their jobs) older than EXPORT_KEEP_HOURS."""

from django.core.management.base import BaseCommand

from annotator.exports import export_jobs_expire


class Command(BaseCommand):
    help = "Delete finished background exports older than EXPORT_KEEP_HOURS, with their files."

    def handle(self, *args, **options):
        self.stdout.write(f"removed {export_jobs_expire()} expired export(s)")
