"""The embedding map's lasso in real Chromium: select points with plotly's lasso, tag them all at
once (POST bulk-tags/), and take it back with one undo."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotator.models import ImageTag, LabelClass
from tests.browser.session import log_in
from tests.browser.test_dashboard import READY, _seed, dashboard_server  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _lasso_everything(page):
    page.locator("#chart-map").scroll_into_view_if_needed()
    box = page.locator("#chart-map .nsewdrag").first.bounding_box()  # in the viewport, once scrolled to
    x0, y0, x1, y1 = box["x"] + 2, box["y"] + 2, box["x"] + box["width"] - 2, box["y"] + box["height"] - 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 3)):
        page.mouse.move(x, y, steps=12)
    page.mouse.up()


def test_lasso_then_bulk_tag_then_undo(browser, page, dashboard_server):  # noqa: F811
    project, ids, _ = _seed()
    circle = LabelClass.objects.get(project=project, name="circle")
    before = set(ImageTag.objects.filter(label=circle).values_list("image_id", flat=True))
    log_in(page, dashboard_server, "owner")
    page.goto(f"{dashboard_server}/projects/{project.id}/dashboard/")
    page.wait_for_selector(READY, timeout=30_000)
    page.wait_for_selector("#lasso-bar:not([hidden])")
    page.keyboard.press("l")  # the lasso
    _lasso_everything(page)
    expect(page.locator("#lasso-count")).to_have_text(re.compile("^60 images"))
    page.select_option("#lasso-label", str(circle.id))
    page.keyboard.press("a")
    expect(page.locator("#lasso-result")).to_have_text(re.compile("^Tagged"))
    assert f"{60 - len(before)} changed, {len(before)} already so" in page.locator("#lasso-result").text_content()
    tagged = dict(ImageTag.objects.filter(label=circle).values_list("image_id", "source"))
    assert set(tagged) == set(ids) and {tagged[i] for i in set(ids) - before} == {"human_bulk"}

    page.wait_for_selector("#lasso-undo:not([disabled])")
    page.keyboard.press("u")
    expect(page.locator("#lasso-result")).to_have_text(re.compile("^Undone"))
    assert set(ImageTag.objects.filter(label=circle).values_list("image_id", flat=True)) == before
    assert page.console_errors == []
