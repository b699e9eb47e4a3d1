"""Import annotation files into a project, matched to its images by file name; all or nothing.

python manage.py import_annotations <project_id> --format coco|yolo|voc|labelstudio|json FILE [FILE ...]
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotator.formats import registry
from annotator.services.exchange import annotations_file_import
from annotator.models import Project


class Command(BaseCommand):
    help = "Import COCO, YOLO (label files + data.yaml/classes.txt, or a zip), Label Studio JSON or Twinlabel JSON."

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("files", nargs="+")
        parser.add_argument("--format", required=True, choices=[reader.name for reader in registry.readers()])
        parser.add_argument("--user", help="username recorded as the annotations' author")

    def handle(self, *args, project_id: int, files: list[str], format: str, user: str | None, **options):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"There is no project {project_id}.")
        author = get_user_model().objects.filter(username=user).first() if user else None
        if user and author is None:
            raise CommandError(f"There is no user “{user}”.")
        try:
            contents = [(Path(f).name, Path(f).read_bytes()) for f in files]
        except OSError as error:
            raise CommandError(str(error)) from None
        try:
            report = annotations_file_import(project=project, user=author, fmt=format, files=contents)
        except ValidationError as error:
            raise CommandError(f"Nothing was imported: {' '.join(error.messages)}") from None
        self.stdout.write(json.dumps(report.as_dict(), indent=2))
