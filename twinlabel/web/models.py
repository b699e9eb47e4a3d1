"""The dashboard's scanned figures of a big project, computed off the request path."""

from __future__ import annotations

from django.db import models

from annotator.models import Project


class DashboardFigures(models.Model):
    """The dashboard's aggregates that scan a project's rows (suggestions, submissions, tags,
    attributes, reviews, agreement), as ``twinlabel.web.dashboard.scanned_figures`` computes them,
    kept for projects of at least DASHBOARD_LIVE_MAX_IMAGES images: the worker's sweep refreshes
    them (dashboard.figures_refresh_due), so the dashboard request reads one row instead of
    scanning millions. ``fingerprint`` is what the project looked like when they were computed
    (status counts and current runs): an unchanged project is not scanned again."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="+")
    figures = models.JSONField()
    fingerprint = models.JSONField(default=dict)
    computed_at = models.DateTimeField()
    compute_ms = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"dashboard figures of project {self.project_id} at {self.computed_at:%Y-%m-%d %H:%M:%S}"
