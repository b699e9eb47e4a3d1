"""Rebuild the per-project status counters from the images and the per-label box counters from the boxes
(after a raw SQL edit, a restore, or to check them)."""

from django.core.management.base import BaseCommand

from annotator.models import Project
from annotator.selectors import label_box_counts, project_status_counts
from annotator.services.status_counts import label_box_counts_recount, status_counts_recount


class Command(BaseCommand):
    help = "Recount each project's images per status and boxes per label: the counts the pages read."

    def add_arguments(self, parser):
        parser.add_argument("project_ids", nargs="*", type=int, help="only these projects (default: all)")

    def handle(self, *args, project_ids, **options):
        projects = Project.objects.order_by("id")
        if project_ids:
            projects = projects.filter(id__in=project_ids)
        for project_id in projects.values_list("id", flat=True).iterator():
            stored = project_status_counts(project_id=project_id)
            counts = status_counts_recount(project_id=project_id)
            drift = {s: counts[s] - stored[s] for s in counts if counts[s] != stored[s]}
            self.stdout.write(f"project {project_id}: {counts}" + (f" (corrected {drift})" if drift else ""))
            stored_boxes = label_box_counts(project_id=project_id)
            boxes = label_box_counts_recount(project_id=project_id)
            box_drift = {
                label: n - stored_boxes.get(label, 0) for label, n in boxes.items() if n != stored_boxes.get(label, 0)
            }
            self.stdout.write(
                f"project {project_id} boxes per label: {boxes}" + (f" (corrected {box_drift})" if box_drift else "")
            )
