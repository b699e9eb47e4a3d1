"""A big project's dashboard: the figures that scan its rows are computed by the worker's sweep and
read from one stored row, the same figures the live path computes; refreshed when the project
changed, not while it did not; the page says when they were computed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from annotator.models import ImageStatus
from annotator.services.annotations import image_submit
from annotator.services.queue import queue_next
from annotator.sweep import sweep_once
from tests.labeling.test_dashboard import _populate
from twinlabel.web import dashboard
from twinlabel.web.models import DashboardFigures

pytestmark = pytest.mark.django_db


def _dashboard(client, project_id: int) -> dict:
    response = client.get(f"/api/projects/{project_id}/dashboard/")
    assert response.status_code == 200
    return response.json()


def test_stored_figures_read_back_as_the_live_ones(team, client):
    project, owner, annotator = team.project, team.owner, team.annotator
    client.force_login(owner)
    _populate(project, annotator, 6)
    live = _dashboard(client, project.id)
    assert live["figures_as_of"] is None
    assert not DashboardFigures.objects.filter(project=project).exists()
    with override_settings(DASHBOARD_LIVE_MAX_IMAGES=1):
        stored = _dashboard(client, project.id)  # none stored yet: computed once, by this request
    assert stored["figures_as_of"] is not None
    assert DashboardFigures.objects.filter(project=project).count() == 1
    for key in ("progress", "submitted_per_day", "annotators", "label_counts", "suggestion_quality", "reviews"):
        assert stored[key] == live[key], key
    assert live["progress"]["submitted"] == 6 and live["progress"]["with_suggestions"] > 0
    assert sum(row["suggested"] for row in live["label_counts"]) > 0


def test_the_request_reads_one_row_instead_of_scanning(team, client, django_assert_max_num_queries):
    project, owner, annotator = team.project, team.owner, team.annotator
    client.force_login(owner)
    _populate(project, annotator, 5)
    with override_settings(DASHBOARD_LIVE_MAX_IMAGES=1):
        dashboard.figures_refresh(project_id=project.id)
        with django_assert_max_num_queries(100) as stored:
            _dashboard(client, project.id)
    with django_assert_max_num_queries(100) as live:
        _dashboard(client, project.id)
    scans = [q["sql"] for q in stored.captured_queries if '"labeling_suggestion"' in q["sql"]]
    assert scans == [], "the stored path must not read the suggestion table"
    assert len(stored.captured_queries) < len(live.captured_queries)


def test_the_sweep_refreshes_a_changed_big_project_and_leaves_an_unchanged_one(team, client):
    project, owner, annotator = team.project, team.owner, team.annotator
    client.force_login(owner)
    _populate(project, annotator, 4)
    with override_settings(DASHBOARD_LIVE_MAX_IMAGES=1, DASHBOARD_REFRESH_SECONDS=0):
        assert sweep_once()["dashboard_figures"] == [project.id]  # none stored: computed
        first = DashboardFigures.objects.get(project=project)
        assert sweep_once()["dashboard_figures"] == []  # nothing changed: not scanned again
        before = _dashboard(client, project.id)
        image = queue_next(project=project, user=annotator)
        image_submit(image=image, user=annotator, version=image.version)
        # Until the sweep: the stored submissions per day are the old ones; the status counts are live.
        between = _dashboard(client, project.id)
        assert between["progress"]["submitted"] == before["progress"]["submitted"] + 1
        assert between["submitted_per_day"] == before["submitted_per_day"]
        assert sweep_once()["dashboard_figures"] == [project.id]
        after = _dashboard(client, project.id)
    assert after["submitted_per_day"][-1]["cumulative"] == before["submitted_per_day"][-1]["cumulative"] + 1
    assert DashboardFigures.objects.get(project=project).computed_at >= first.computed_at
    assert after["figures_as_of"] is not None


def test_stored_figures_are_refreshed_when_too_old_even_if_nothing_moved_a_status(team):
    project, annotator = team.project, team.annotator
    _populate(project, annotator, 3)
    with override_settings(DASHBOARD_LIVE_MAX_IMAGES=1, DASHBOARD_REFRESH_SECONDS=60, DASHBOARD_MAX_AGE_SECONDS=600):
        dashboard.figures_refresh(project_id=project.id)
        assert dashboard.figures_refresh_due() == []  # fresh
        DashboardFigures.objects.filter(project=project).update(computed_at=timezone.now() - timedelta(seconds=120))
        assert dashboard.figures_refresh_due() == []  # a minute old, but the project is as it was
        DashboardFigures.objects.filter(project=project).update(computed_at=timezone.now() - timedelta(seconds=601))
        assert dashboard.figures_refresh_due() == [project.id]


def test_small_projects_are_not_stored(team):
    _populate(team.project, team.annotator, 2)
    assert dashboard.figures_refresh_due() == []
    assert not DashboardFigures.objects.exists()


def test_with_suggestions_never_exceeds_the_live_unlabeled_count():
    counts = {status: 0 for status in ImageStatus.values}
    counts.update({ImageStatus.UNLABELED: 3, ImageStatus.SUBMITTED: 7, "total": 10})
    shown = dashboard.progress(counts=counts, figures={"with_suggestions": 5})
    assert shown["with_suggestions"] == 3 and shown["unlabeled"] == 0


def test_a_big_projects_page_shows_the_stored_review_count_and_when_it_was_counted(team, client):
    project, owner, annotator = team.project, team.owner, team.annotator
    client.force_login(owner)
    _populate(project, annotator, 3)  # three submitted images, none reviewed
    assert "Review submissions (3 waiting)" in client.get(f"/projects/{project.id}/").content.decode()
    with override_settings(DASHBOARD_LIVE_MAX_IMAGES=1):
        dashboard.figures_refresh(project_id=project.id)
        DashboardFigures.objects.filter(project=project).update(
            figures={**DashboardFigures.objects.get(project=project).figures, "review_pending": 2}
        )
        page = client.get(f"/projects/{project.id}/").content.decode()
    assert "Review submissions (2 waiting)" in page  # the stored figure, not a count of the images
    assert 'id="reviews-as-of"' in page
