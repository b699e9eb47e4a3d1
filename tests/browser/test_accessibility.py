"""Every page passes an axe-core audit in real Chromium with no serious or critical violations.

axe-core comes from the axe-playwright-python wheel (requirements-dev.txt). The results per page are
written to bench/results/axe.json (rule ids and impacts of every violation, minor ones included), so the
closing note's figures come from the run itself."""

from __future__ import annotations

import json
import os
import platform
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotator.models import Box, Image, ImageStatus, LabelClass, Role
from labeling.models import AuditResult, AutoTag
from tests import procs
from tests.browser.session import log_in
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]
BLOCKING = {"serious", "critical"}
RESULTS = procs.ROOT / "bench" / "results" / "axe.json"


def _project():
    owner, reviewer = make_user("owner"), make_user("rev")
    project = make_project(owner=owner, labels=("cat", "dog"), name="Pets")
    add_member(project, reviewer, Role.REVIEWER)
    ids = add_images(project, 4, size=(320, 240))
    cat = LabelClass.objects.get(project=project, name="cat")
    Box.objects.create(image_id=ids[0], label=cat, x=10, y=10, w=80, h=60, author=owner)
    Image.objects.filter(pk=ids[0]).update(
        status=ImageStatus.SUBMITTED, submitted_by=owner, box_count=1, submitted_at=timezone.now() - timedelta(hours=1)
    )
    AutoTag.objects.create(image_id=ids[1], label=cat, probability=0.98, audit_result=AuditResult.PENDING)
    return project


def _pages(project, empty):
    p = project.id
    return [
        ("project, empty (the guide)", f"/projects/{empty.id}/", "main"),
        ("dashboard, empty (the notes)", f"/projects/{empty.id}/dashboard/", "body[data-dashboard=ready]"),
        ("projects", "/", "main"),
        ("project", f"/projects/{p}/", "main"),
        ("grid", f"/projects/{p}/images/", "main"),
        ("annotate", f"/projects/{p}/annotate/", "#annotate-app.ready"),
        ("review", f"/projects/{p}/review/", "main"),
        ("audit (an auto-accepted tag to check)", f"/projects/{p}/audit/", "#audit-app"),
        ("members", f"/projects/{p}/members/", "main"),
        ("dashboard", f"/projects/{p}/dashboard/", "body[data-dashboard=ready]"),
        ("api docs (Swagger UI)", "/api/docs/", ".swagger-ui .opblock"),
    ]


def _audit(axe, page, name: str) -> dict:
    result = axe.run(page, options={"resultTypes": ["violations"]}).response
    found = [
        {"rule": v["id"], "impact": v["impact"], "help": v["help"], "targets": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]
    return {
        "page": name,
        "url": page.url,
        "violations": found,
        "blocking": [v for v in found if v["impact"] in BLOCKING],
    }


def test_it_has_no_serious_or_critical_violations_on_any_page(browser, page, server, axe):
    project = _project()
    empty = make_project(owner=get_user_model().objects.get(username="owner"), labels=(), name="Empty")
    report = []
    page.goto(f"{server}/accounts/login/")
    report.append(_audit(axe, page, "login"))
    log_in(page, server, "owner")
    for name, path, ready in _pages(project, empty):
        page.goto(server + path)
        page.wait_for_selector(ready, timeout=30_000)
        report.append(_audit(axe, page, name))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
        "note": "counts of violations, not timings; the load is noted as on every result",
    }
    RESULTS.write_text(
        json.dumps(
            {"axe_core": page.evaluate("axe.version"), "browser": browser.version, "machine": machine, "pages": report},
            indent=1,
        )
        + "\n"
    )
    assert len(report) == 12
    blocking = {r["page"]: r["blocking"] for r in report if r["blocking"]}
    assert blocking == {}, json.dumps(blocking, indent=1)


def test_it_shows_where_the_keyboard_focus_is(browser, page, server):
    make_user("owner")
    page.goto(f"{server}/accounts/login/")
    seen = []
    for _ in range(6):  # the brand link, the username, the password, the button, and round again
        page.keyboard.press("Tab")
        ring = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return {tag: document.activeElement.tagName, style: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }""")
        if ring["tag"] != "BODY":
            seen.append(ring)
    assert {r["tag"] for r in seen} >= {"INPUT", "BUTTON", "A"}, seen
    assert all(r["style"] != "none" and r["width"] >= 2 for r in seen), seen
