"""The project page's runs table in Chromium: a run that paused for waiting runs shows why it waits as
a note, a failed run its error as an error."""

from __future__ import annotations

import pytest

from labeling.models import RunKind, RunStatus, TrainingRun
from tests.browser.session import log_in
from tests.factories import make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PAUSED = "Paused at step 120 to let waiting runs go first; it resumes by itself after them."


def test_a_paused_run_reads_as_waiting_and_a_failed_one_as_failed(server, page):
    project = make_project(owner=make_user("owner"), name="Runs")
    paused = TrainingRun.objects.create(
        project=project, kind=RunKind.DETECTOR, status=RunStatus.QUEUED, step=120, error=PAUSED
    )
    failed = TrainingRun.objects.create(
        project=project, kind=RunKind.PRETRAIN, status=RunStatus.FAILED, error="Traceback ...\nMemoryError: boom\n"
    )
    log_in(page, server, "owner")
    page.goto(f"{server}/projects/{project.id}/")
    page.wait_for_selector(f"tr[data-run-id='{failed.id}']")
    note = page.locator(f"tr[data-run-id='{paused.id}'] td:last-child span")
    assert note.text_content() == PAUSED and note.get_attribute("class") == "muted run-note"
    assert page.locator(f"tr[data-run-id='{paused.id}']").get_attribute("data-status") == "queued"
    error = page.locator(f"tr[data-run-id='{failed.id}'] td:last-child span")
    assert error.text_content() == "MemoryError: boom" and error.get_attribute("class") == "error"
