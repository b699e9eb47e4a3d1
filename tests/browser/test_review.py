"""The review page in real Chromium, and escaping: label names and review comments that carry
markup show as text on the project, annotate and review pages, and never run."""

from __future__ import annotations


import pytest

from annotator.services import reviews
from annotator.services.annotations import image_submit
from annotator.models import Box, Image, ImageTag, Review, Role
from tests.factories import add_images, add_member, make_project, make_user

from tests.browser.session import log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LABEL_XSS = "<img src=x onerror=window.__xss=1>"
COMMENT_XSS = "</textarea><script>window.__xss=2</script><img src=x onerror=window.__xss=3> fix the box"


def _team(images=3):
    owner = make_user("owner")
    project = make_project(owner=owner, labels=("cat", LABEL_XSS), name="Pets")
    annie, rev = make_user("annie"), make_user("rev")
    add_member(project, annie, Role.ANNOTATOR)
    add_member(project, rev, Role.REVIEWER)
    return project, annie, rev, add_images(project, images, size=(200, 150))


def _submit(image_id, user, label):
    image = Image.objects.get(pk=image_id)
    Box.objects.create(image=image, label=label, x=20, y=30, w=60, h=40, author=user)
    ImageTag.objects.get_or_create(image=image, label=label, defaults={"author": user})
    image_submit(image=image, user=user, version=image.version)


def _version(image_id):
    return Image.objects.get(pk=image_id).version


def test_markup_in_label_names_and_comments_is_shown_as_text_and_never_runs(server, page):
    project, annie, rev, (a, b, _) = _team()
    xss = project.labels.get(name=LABEL_XSS)
    # a: rejected with the comment, fixed and submitted again, so it waits for review with a history.
    _submit(a, annie, xss)
    reviews.review_reject(image=Image.objects.get(pk=a), user=rev, version=_version(a), comment=COMMENT_XSS)
    image_submit(image=Image.objects.get(pk=a), user=annie, version=_version(a))
    # b: rejected, so its annotator sees the comment on the annotate page.
    _submit(b, annie, xss)
    reviews.review_reject(image=Image.objects.get(pk=b), user=rev, version=_version(b), comment=COMMENT_XSS)

    log_in(page, server, "rev")
    page.goto(f"{server}/projects/{project.id}/")
    assert LABEL_XSS in page.locator("#labels").inner_text()
    assert page.evaluate("window.__xss") is None

    page.goto(f"{server}/projects/{project.id}/review/")
    page.wait_for_selector("#review-app")
    assert LABEL_XSS in page.locator("#review-boxes").inner_text()
    assert LABEL_XSS in page.locator("#review-tags").inner_text()
    assert LABEL_XSS in page.locator(".review-box span").first.inner_text()
    assert COMMENT_XSS in page.locator(".review-history").inner_text()
    assert page.evaluate("window.__xss") is None

    page.context.clear_cookies()
    log_in(page, server, "annie")
    page.goto(f"{server}/projects/{project.id}/annotate/?image={b}")
    page.wait_for_selector("#annotate-app.ready")
    note = page.locator("#review-note")
    note.wait_for(state="visible")
    assert COMMENT_XSS in note.inner_text()
    assert LABEL_XSS in page.locator("#box-list").inner_text()
    assert LABEL_XSS in page.locator("#class-list").inner_text()
    assert page.evaluate("window.__xss") is None
    assert not page.console_errors


def test_a_reviewer_accepts_with_a_key_and_rejects_with_a_comment_the_annotator_sees(server, page):
    project, annie, rev, (a, b, c) = _team()
    cat = project.labels.get(name="cat")
    for image_id in (a, b):
        _submit(image_id, annie, cat)

    log_in(page, server, "rev")
    page.goto(f"{server}/projects/{project.id}/review/")
    assert page.locator("#image-name").inner_text() == Image.objects.get(pk=a).original_name
    page.keyboard.press("a")
    page.wait_for_function(f"() => JSON.parse(document.getElementById('review-config').textContent).image === {b}")
    # Rejecting with no comment is refused on the page; with one, it goes.
    page.click("[data-action=reject]")
    assert "Write what to fix" in page.locator("#review-message").inner_text()
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.keyboard.type("The box misses the tail.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#review-done")
    assert list(Review.objects.order_by("id").values_list("image_id", "decision", "comment")) == [
        (a, "accepted", ""),
        (b, "rejected", "The box misses the tail."),
    ]

    page.context.clear_cookies()
    log_in(page, server, "annie")
    page.goto(f"{server}/projects/{project.id}/annotate/")
    page.wait_for_selector("#annotate-app.ready")
    assert page.evaluate("twinlabel.store.image.id") == b  # back in the queue, first in line
    assert "The box misses the tail." in page.locator("#review-note").inner_text()
    assert "rev" in page.locator("#review-note .who").inner_text()
    assert not page.console_errors
