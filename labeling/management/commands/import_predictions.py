"""Import another model's predictions into a project as an external run; all or nothing.

python manage.py import_predictions <project_id> --format json|coco|yolo [--model-version V] FILE_OR_DIR [...]
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotator.formats.predictions import FORMATS
from annotator.models import Project
from labeling.external import predictions_import


class Command(BaseCommand):
    help = "Import tag and box predictions (Twinlabel JSON, COCO results, YOLO with a confidence column)."

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("files", nargs="+", help="files, or folders (YOLO: labels/*.txt and data.yaml)")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--model-version", default="", help="which model made them (a JSON file may carry it)")
        parser.add_argument("--tags-from-boxes", action="store_true", help="score labels by each image's best box")
        parser.add_argument("--no-activate", action="store_true", help="keep the current suggestions shown")
        parser.add_argument("--user", help="username recorded as the run's creator")

    def handle(self, *args, project_id: int, files: list[str], format: str, user: str | None, **options):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"There is no project {project_id}.")
        creator = get_user_model().objects.filter(username=user).first() if user else None
        if user and creator is None:
            raise CommandError(f"There is no user “{user}”.")
        try:
            contents = [(str(p), p.read_bytes()) for f in files for p in _files(Path(f))]
            report = predictions_import(
                project=project,
                user=creator,
                fmt=format,
                files=contents,
                model_version=options["model_version"],
                tags_from_boxes=options["tags_from_boxes"],
                activate=not options["no_activate"],
            )
        except OSError as error:
            raise CommandError(str(error)) from None
        except ValidationError as error:
            raise CommandError(f"Nothing was imported: {' '.join(error.messages)}") from None
        self.stdout.write(json.dumps(report.as_dict(), indent=2))


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
