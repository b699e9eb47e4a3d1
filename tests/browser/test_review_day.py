"""Issue 19 on the review page, in real Chromium against the real server: S skips to the next
submission (and lets go of the skipped one), and a reviewer fixes boxes with the keyboard and
accepts them in one write, recorded as a reviewer edit."""

from __future__ import annotations

import pytest

from annotator.models import Box, Image, LabelClass, Review, Role
from tests.browser.session import log_in
from tests.browser.test_review import _submit, _version
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _team(images=3):
    owner = make_user("owner")
    project = make_project(owner=owner, labels=("cat", "dog"), name="Pets")
    annie, rev = make_user("annie"), make_user("rev")
    add_member(project, annie, Role.ANNOTATOR)
    add_member(project, rev, Role.REVIEWER)
    ids = add_images(project, images, size=(200, 150))
    cat = LabelClass.objects.get(project=project, name="cat")
    for image_id in ids:
        _submit(image_id, annie, cat)
    return project, ids


def _shown(page):
    return page.evaluate("JSON.parse(document.getElementById('review-config').textContent).image")


def test_s_skips_to_the_next_submission_and_lets_go_of_the_skipped_one(server, page):
    project, ids = _team()
    log_in(page, server, "rev")
    page.goto(f"{server}/projects/{project.id}/review/")
    page.wait_for_selector("#review-app")
    first = _shown(page)
    assert Image.objects.get(pk=first).locked_by.username == "rev"
    page.keyboard.press("s")
    page.wait_for_function(f"() => JSON.parse(document.getElementById('review-config').textContent).image !== {first}")
    second = _shown(page)
    assert second != first and Image.objects.get(pk=first).locked_by is None  # another reviewer may take it
    page.keyboard.press("s")
    page.wait_for_function(f"() => JSON.parse(document.getElementById('review-config').textContent).image !== {second}")
    assert _shown(page) not in (first, second)
    assert not Review.objects.exists()  # a skip is no verdict
    assert page.console_errors == []


def test_a_reviewer_fixes_boxes_with_the_keyboard_and_accepts_them_in_one_write(server, page):
    project, ids = _team(images=1)
    image_id = ids[0]
    cat = LabelClass.objects.get(project=project, name="cat")
    Box.objects.create(image_id=image_id, label=cat, x=100, y=100, w=30, h=30)  # a second box, to delete
    Image.objects.filter(pk=image_id).update(box_count=2)
    version = _version(image_id)
    log_in(page, server, "rev")
    page.goto(f"{server}/projects/{project.id}/review/")
    page.wait_for_selector("#review-app")
    page.click("#review-boxes [data-box='1']")
    page.keyboard.press("Delete")
    page.click("#review-boxes [data-box='0']")  # cat at 20,30 60x40
    page.keyboard.press("Shift+ArrowRight")  # x + 10
    page.keyboard.press("ArrowDown")  # y + 1
    page.keyboard.press("Alt+ArrowRight")  # w + 1
    page.keyboard.press("2")  # relabel: dog
    assert page.is_visible("#review-edited")
    assert page.locator(".review-box span").all_inner_texts() == ["dog"]
    page.keyboard.press("a")
    page.wait_for_url(f"**/projects/{project.id}/review/")
    page.wait_for_selector("#review-done")
    boxes = list(Box.objects.filter(image_id=image_id).values_list("label__name", "x", "y", "w", "h"))
    assert boxes == [("dog", 30.0, 31.0, 61.0, 40.0)]
    image = Image.objects.get(pk=image_id)
    assert (image.version, image.box_count, image.review_status) == (version + 1, 1, "accepted")
    review = Review.objects.get()
    assert (review.decision, review.edited, review.reviewer.username) == ("accepted", True, "rev")
    assert page.console_errors == []


def test_an_accept_without_fixes_is_no_reviewer_edit(server, page):
    project, ids = _team(images=1)
    log_in(page, server, "rev")
    page.goto(f"{server}/projects/{project.id}/review/")
    page.wait_for_selector("#review-app")
    page.keyboard.press("a")
    page.wait_for_selector("#review-done")
    assert Review.objects.get().edited is False
    assert list(Box.objects.values_list("x", "y", "w", "h")) == [(20.0, 30.0, 60.0, 40.0)]
