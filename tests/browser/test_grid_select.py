"""Selection on the image grid in real Chromium against the real server (grid_select.js): Ctrl+click
and a dragged rectangle select thumbnails, T tags them all (POST bulk-tags/), A accepts their
suggestions of a label (POST bulk-suggestions/), U takes the last write back; on the near-duplicates
grid "tag group" tags every image of a group."""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import expect

from annotator.models import ImageTag
from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun
from tests.browser.session import log_in
from tests.browser.test_more_like_this import embedding_server  # noqa: F401 (a fixture)
from tests.factories import add_images, embeddings, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _tags(label):
    return dict(ImageTag.objects.filter(label=label).values_list("image_id", "source"))


def _grid(page, url, project, query=""):
    page.goto(f"{url}/projects/{project.id}/images/{query}")
    page.wait_for_selector("#select-bar")


def test_select_three_thumbnails_tag_them_and_undo(browser, page, embedding_server):  # noqa: F811
    project = make_project(owner=make_user("owner"), labels=("cat", "dog"))
    dog = project.labels.get(name="dog")
    ids = add_images(project, 6)
    log_in(page, embedding_server, "owner")
    _grid(page, embedding_server, project)
    for image_id in ids[1:4]:
        page.click(f'.thumb[data-image-id="{image_id}"] img', modifiers=["Control"])
    expect(page.locator("#select-count")).to_have_text("3 images selected")
    assert page.url.endswith("/images/")  # a Ctrl+click selects, it does not open the image
    page.select_option("#select-label", str(dog.id))
    page.keyboard.press("t")
    expect(page.locator("#select-result")).to_have_text(re.compile("^Tagged “dog”: 3 changed"))
    assert _tags(dog) == {i: "human_bulk" for i in ids[1:4]}
    page.wait_for_selector("#select-undo:not([disabled])")
    page.keyboard.press("u")
    expect(page.locator("#select-result")).to_have_text(re.compile("^Undone on 3 images"))
    assert _tags(dog) == {}
    page.keyboard.press("Escape")
    page.click(f'.thumb[data-image-id="{ids[0]}"] img', modifiers=["Control"])
    page.click(f'.thumb[data-image-id="{ids[4]}"] img', modifiers=["Shift"])  # a range from the last click
    expect(page.locator("#select-count")).to_have_text("5 images selected")
    assert page.console_errors == []


def test_a_dragged_rectangle_selects_and_a_accepts_the_suggestions(browser, page, embedding_server):  # noqa: F811
    project = make_project(owner=make_user("owner"), labels=("cat", "dog"))
    cat = project.labels.get(name="cat")
    ids = add_images(project, 6)
    run = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=project, probe_run=run)
    for image_id in ids:
        Suggestion.objects.create(run=run, image_id=image_id, label=cat, probability=0.95, predicted=True)
    log_in(page, embedding_server, "owner")
    _grid(page, embedding_server, project)
    first = page.locator(f'.thumb[data-image-id="{ids[0]}"]').bounding_box()
    second = page.locator(f'.thumb[data-image-id="{ids[1]}"]').bounding_box()
    page.mouse.move(first["x"] + 10, first["y"] + 10)
    page.mouse.down()
    page.mouse.move(second["x"] + 20, second["y"] + 20, steps=8)
    page.mouse.up()
    expect(page.locator("#select-count")).to_have_text("2 images selected")
    assert page.url.endswith("/images/")
    page.select_option("#select-label", str(cat.id))
    page.keyboard.press("a")
    expect(page.locator("#select-result")).to_have_text(re.compile("^Accepted “cat” suggestions: 2 changed"))
    assert _tags(cat) == {ids[0]: "model", ids[1]: "model"}
    page.keyboard.press("u")
    expect(page.locator("#select-result")).to_have_text(re.compile("^Undone on 2 images"))
    assert _tags(cat) == {}
    assert page.console_errors == []


def test_tag_group_tags_every_image_of_a_near_duplicate_group(browser, page, embedding_server):  # noqa: F811
    from labeling.curation import duplicates_write

    project = make_project(owner=make_user("owner"), labels=("cat", "dog"))
    cat = project.labels.get(name="cat")
    ids = add_images(project, 6)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 32))
    x[3] = x[0] + rng.normal(scale=0.01, size=32)
    x[5] = x[0] + rng.normal(scale=0.01, size=32)
    x[4] = x[2] + rng.normal(scale=0.01, size=32)
    duplicates_write(backbone_run_id=embeddings(project, ids, x).id)
    log_in(page, embedding_server, "owner")
    _grid(page, embedding_server, project, "?duplicates=1")
    page.select_option("#select-label", str(cat.id))
    page.locator(f'.thumb[data-image-id="{ids[3]}"] button.tag-group').click()
    expect(page.locator("#select-result")).to_have_text(re.compile("^Tagged “cat”: 3 changed"))
    assert set(_tags(cat)) == {ids[0], ids[3], ids[5]}
    page.keyboard.press("u")
    expect(page.locator("#select-result")).to_have_text(re.compile("^Undone on 3 images"))
    page.keyboard.press("Escape")  # "tag group" left its group selected
    expect(page.locator("#select-count")).to_have_text("0 images selected")
    page.click(f'.thumb[data-image-id="{ids[4]}"] img', modifiers=["Control"])
    page.keyboard.press("g")  # the group of the selected image
    expect(page.locator("#select-result")).to_have_text(re.compile("^Tagged “cat”: 2 changed"))
    assert set(_tags(cat)) == {ids[2], ids[4]}
    assert page.console_errors == []
