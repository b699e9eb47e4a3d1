"""Auto-accept in real Chromium: an admin turns it on from the project page's settings, and a
reviewer goes from the review page's link to the audit page and audits with Y and N."""

from __future__ import annotations

import pytest

from annotator.models import ImageTag, Role, Source
from labeling.auto_accept import auto_accept_apply
from labeling.models import AuditResult, AutoTag, ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun
from tests.browser.session import log_in
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_an_admin_turns_auto_accept_on_and_a_reviewer_audits_with_keys(server, page):
    owner, rev = make_user("owner"), make_user("rev")
    project = make_project(owner=owner)
    add_member(project, rev, Role.REVIEWER)
    ids = add_images(project, 3, size=(120, 90))
    cat = project.labels.get(name="cat")

    log_in(page, server, "owner")
    page.goto(f"{server}/projects/{project.id}/")
    page.click("#trust-settings summary")
    page.wait_for_function("() => document.querySelector('#trust-form [name=audit_rate]').value !== ''")
    page.check("#trust-form [name=auto_accept]")
    page.fill("#trust-form [name=auto_accept_target]", "0.98")
    page.fill("#trust-form [name=audit_rate]", "1")
    page.click("#trust-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('trust-message').textContent.startsWith('Saved')")
    state = ProjectModelState.objects.get(project=project)
    assert (state.auto_accept, state.auto_accept_target, state.audit_rate) == (True, 0.98, 1.0)

    # A fit that gives cat an auto threshold; its suggestions for all three images are above it.
    run = TrainingRun.objects.create(
        project=project,
        kind=RunKind.PROBE,
        status=RunStatus.SUCCEEDED,
        metrics={"trust": {"labels": [{"label_id": cat.id, "auto_threshold": 0.95, "auto_target": 0.98}]}},
    )
    ProjectModelState.objects.filter(project=project).update(probe_run=run)
    for image_id in ids:
        Suggestion.objects.create(run=run, image_id=image_id, label=cat, probability=0.99, predicted=True)
    assert auto_accept_apply(run_id=run.id) == 3

    page.context.clear_cookies()
    log_in(page, server, "rev")
    page.goto(f"{server}/projects/{project.id}/review/")
    page.click("#review-audit-link")
    assert page.locator("#audit-pending").inner_text() == "3"
    assert page.locator("#audit-label").inner_text() == "cat"
    page.keyboard.press("y")
    page.wait_for_function("() => document.getElementById('audit-pending').textContent === '2'")
    page.keyboard.press("n")
    page.wait_for_function("() => document.getElementById('audit-pending').textContent === '1'")
    assert list(AutoTag.objects.order_by("id").values_list("audit_result", flat=True)) == [
        AuditResult.CONFIRMED,
        AuditResult.REJECTED,
        AuditResult.PENDING,
    ]
    assert sorted(ImageTag.objects.filter(source=Source.MODEL_AUTO).values_list("image_id", flat=True)) == [
        ids[0],
        ids[2],
    ]
    assert not page.console_errors
