"""Export a project's annotations to a file (or stdout), streaming: the same code as the API's export.

python manage.py export <project_id> --format coco|voc|yolo|csv|json [--status submitted|all|...] [--images]
                        [--predictions 0.5] [-o out.json]
"""

from __future__ import annotations

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotator.formats import registry
from annotator.exports import ExportOptions, export_stream
from annotator.models import ImageStatus, Project


class Command(BaseCommand):
    help = "Export a project's annotations as COCO, Pascal VOC (zip), YOLO (zip), CSV or Twinlabel JSON."

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("--format", required=True, choices=[writer.name for writer in registry.writers()])
        parser.add_argument(
            "--status",
            choices=[*ImageStatus.values, "all"],
            default="submitted",
            help="only images with this status (default: submitted); all: every image",
        )
        parser.add_argument(
            "--predictions",
            type=float,
            metavar="P",
            help="include the model's suggestions with probability ≥ P as predictions",
        )
        parser.add_argument("--images", action="store_true", help="YOLO: put the image files in the zip too")
        parser.add_argument("-o", "--output", help="file to write (default: stdout)")

    def handle(
        self,
        *args,
        project_id: int,
        format: str,
        status: str | None,
        predictions: float | None,
        output: str | None,
        images: bool = False,
        **options,
    ):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"There is no project {project_id}.")
        try:
            chunks = export_stream(
                project=project,
                options=ExportOptions(format=format, status=status, predictions_min=predictions, images=images),
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        out = open(output, "wb") if output else sys.stdout.buffer
        try:
            for chunk in chunks:
                out.write(chunk)
        finally:
            if output:
                out.close()
        if output:
            self.stderr.write(f"wrote {output}")
