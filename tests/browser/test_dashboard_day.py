"""The dashboard's day charts, empty charts and run keys (issue 19), in real Chromium against the real
server. UPDATE_DOCS_SCREENSHOTS=1 also writes docs/dashboard-one-day.png and docs/dashboard-30-days.png."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from annotator.models import Image, ImageStatus, Role
from annotator.services.status_counts import status_counts_recount
from labeling.models import RunKind, RunStatus, TrainingRun
from tests import procs
from tests.browser.session import log_in
from tests.browser.test_dashboard import READY
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]
DAY_CHARTS = ["chart-progress-time", "chart-annotator-images", "chart-annotator-boxes", "chart-annotator-tags"]
DATE_TICK = re.compile(r"^[A-Z][a-z]{2} \d{1,2}$")  # "Dec 2": a day, never a time of day


@pytest.fixture
def dashboard_server(transactional_db, media_root, settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    with procs.web(procs.service_env(MEDIA_ROOT=str(media_root), MODEL_DIR=str(settings.MODEL_DIR))) as (_, url):
        yield url


def _submitted_over(days: int):
    owner, ann = make_user("owner"), make_user("ann")
    project = make_project(owner=owner, name="Days")
    add_member(project, ann, Role.ANNOTATOR)
    ids = add_images(project, days * 2)
    now = timezone.now()
    for n, image_id in enumerate(ids):
        Image.objects.filter(pk=image_id).update(
            status=ImageStatus.SUBMITTED,
            submitted_by=(owner, ann)[n % 2],
            box_count=1,
            human_tag_count=1,
            submitted_at=now - timedelta(days=(n // 2) % days),
        )
    status_counts_recount(project_id=project.id)  # the rows were updated behind the counters' back
    return project


def _day_charts(page):
    return page.evaluate(
        """(ids) => ids.map((id) => {
        const el = document.getElementById(id);
        const plot = el.querySelector('.draglayer .xy .nsewdrag').getBoundingClientRect();
        const bars = [...el.querySelectorAll('.bars path')].map((p) => p.getBoundingClientRect().width).filter((w) => w > 0);
        return { id, ticks: [...el.querySelectorAll('.xtick text')].map((t) => t.textContent),
                 plotWidth: plot.width, widest: Math.max(...bars) };
    })""",
        DAY_CHARTS,
    )


@pytest.mark.parametrize("days", [1, 30])
def test_day_charts_have_a_date_axis_and_narrow_bars(browser, page, dashboard_server, days):
    project = _submitted_over(days)
    log_in(page, dashboard_server, "owner")
    page.goto(f"{dashboard_server}/projects/{project.id}/dashboard/")
    page.wait_for_selector(READY, timeout=30_000)
    for chart in _day_charts(page):
        assert chart["ticks"] and all(DATE_TICK.match(t) for t in chart["ticks"]), chart
        assert 2 <= len(chart["ticks"]) <= 16, chart  # a week of days at least, never one tick per hour
        assert chart["widest"] < chart["plotWidth"] / 5, chart  # a day's bar, not the whole chart
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        name = "dashboard-one-day.png" if days == 1 else "dashboard-30-days.png"
        page.set_viewport_size({"width": 1280, "height": 1300})
        page.locator("#progress").screenshot(path=str(procs.ROOT / "docs" / name))
        page.locator("#annotators .charts").screenshot(
            path=str(procs.ROOT / "docs" / name.replace(".png", "-annotators.png"))
        )
    assert page.console_errors == []


def test_an_empty_project_says_what_each_chart_will_show_and_what_starts_it(browser, page, dashboard_server):
    owner = make_user("owner")
    project = make_project(owner=owner, labels=(), name="Empty")
    log_in(page, dashboard_server, "owner")
    page.goto(f"{dashboard_server}/projects/{project.id}/dashboard/")
    page.wait_for_selector(READY, timeout=30_000)
    notes = page.locator(".chart-empty").all_text_contents()
    assert len(notes) == 10, notes  # every chart: progress, time, 3 per annotator, labels, quality, curve, loss, map
    assert page.locator(".chart:not([hidden])").count() == 0
    assert page.locator(".js-plotly-plot").count() == 0  # no empty axes anywhere
    map_note = page.locator("#chart-map").evaluate("(el) => el.previousElementSibling.textContent")
    assert "Pretrain" in map_note and "appears here" in map_note
    assert any("upload" in n for n in notes) and any("add them on the project page" in n for n in notes)
    assert page.console_errors == []


def test_x_cancels_the_newest_active_run_and_t_retries_the_newest_failed_one(browser, page, dashboard_server):
    owner = make_user("owner")
    project = make_project(owner=owner, name="Runs")
    failed = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.FAILED, error="boom")
    queued = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.QUEUED)
    log_in(page, dashboard_server, "owner")
    # The retry itself is labeling's (tested there); here: T presses the Retry button of that run.
    page.route("**/api/runs/*/retry/", lambda route: route.fulfill(status=201, json={}))
    page.goto(f"{dashboard_server}/projects/{project.id}/dashboard/")
    page.wait_for_selector(READY, timeout=30_000)
    assert page.locator(f"#runs tr[data-run-id='{queued.id}'] button kbd").text_content() == "X"
    assert page.locator(f"#runs tr[data-run-id='{failed.id}'] button kbd").text_content() == "T"
    with page.expect_request("**/api/runs/*/retry/") as request:
        page.keyboard.press("t")
    assert request.value.url == f"{dashboard_server}/api/runs/{failed.id}/retry/"
    page.keyboard.press("x")
    page.wait_for_function(f"() => !document.querySelector(\"#runs tr[data-run-id='{queued.id}'] button[data-key=x]\")")
    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELLED
    # Now the cancelled run is the newest one to retry: T moved to its button.
    assert page.locator(f"#runs tr[data-run-id='{queued.id}'] button kbd").text_content() == "T"
    assert page.console_errors == []
