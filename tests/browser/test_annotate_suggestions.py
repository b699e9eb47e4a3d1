"""The model's suggested tags on the annotate page, in real Chromium against the real server:
shown apart from a person's tags, accepted (A, a click, ⇧A) and rejected (R), kept through later
edits, and the queue order switch. The suggestions are rows made with the ORM: nothing is trained."""

from __future__ import annotations

import re

import pytest

from annotator.models import Box, Image, ImageStatus, ImageTag, LabelClass, Source
from labeling.models import Decision, ImageUncertainty, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import SuggestionDecision, TrainingRun
from tests.browser.test_annotate import READY, _drag_image, _open, _saved, _wait_image
from tests.factories import add_images, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]


# ---- helpers ---------------------------------------------------------------------------------------


def _project(images=3):
    project = make_project(owner=make_user("owner"), labels=("cat", "dog", "bird"), name="Pets")
    ids = add_images(project, images, size=(400, 300))
    cat, dog, bird = LabelClass.objects.filter(project=project).order_by("order")
    return project, ids, cat, dog, bird


def _probe(project) -> TrainingRun:
    """A finished pretraining and probe, made current for the project, as if trained."""
    pretrain = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    probe = TrainingRun.objects.create(
        project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED, backbone_run=pretrain
    )
    ProjectModelState.objects.create(project=project, pretrain_run=pretrain, probe_run=probe)
    return probe


def _suggest(run, image_id, *rows):
    """rows: (label, probability, predicted)."""
    Suggestion.objects.bulk_create(
        [
            Suggestion(run=run, image_id=image_id, label=label, probability=p, predicted=predicted)
            for label, p, predicted in rows
        ]
    )


def _pets_with_suggestions(images=3):
    """cat 62 % and dog 87 % suggested for the first image; bird 8 %, below its threshold."""
    project, ids, cat, dog, bird = _project(images)
    run = _probe(project)
    _suggest(run, ids[0], (dog, 0.87, True), (cat, 0.62, True), (bird, 0.08, False))
    return project, ids, cat, dog, bird


def _tag(page, label):
    return page.locator(f"#tag-list [data-label='{label.id}']")


def _row(page, label):
    return page.locator(f"#tag-list .tag-row[data-row='{label.id}']")


def _classes(locator):
    return (locator.get_attribute("class") or "").split()


def _decisions(image_id):
    return dict(SuggestionDecision.objects.filter(image_id=image_id).values_list("label__name", "decision"))


def _db_tags(image_id):
    return dict(ImageTag.objects.filter(image_id=image_id).values_list("label__name", "source"))


def _decided(page, label, state):
    """Until the decision's answer is in: the label's switch shows it, and nothing is left to save."""
    page.wait_for_selector(f"#tag-list [data-label='{label.id}'].{state}")
    _saved(page)


# ---- showing -------------------------------------------------------------------------------------


def test_it_shows_suggested_tags_apart_with_their_probability(server, page):
    project, ids, cat, dog, bird = _pets_with_suggestions()
    image_id = _open(page, server, project)
    assert image_id == ids[0]
    for label, text in [(dog, "87%"), (cat, "62%")]:
        tag = _tag(page, label)
        assert "suggested" in tag.get_attribute("class")
        assert tag.get_attribute("aria-checked") == "false"  # not a tag until accepted
        assert text in tag.text_content()
        assert _row(page, label).locator(".suggest-actions").is_visible()
    # Below its threshold: only the probability, faintly, and nothing to accept.
    assert "suggested" not in _classes(_tag(page, bird))
    assert "8%" in _tag(page, bird).text_content()
    assert _row(page, bird).locator(".suggest-actions").is_hidden()
    # The likeliest is ringed for A / R; the buttons say which key they answer to.
    assert "focused" in _classes(_row(page, dog))
    assert _row(page, dog).locator("button.accept kbd").text_content() == "A"
    assert _row(page, dog).locator("button.reject kbd").text_content() == "R"
    assert page.locator("#accept-all").is_visible()
    assert page.text_content("#accept-all .n") == "2"
    # A suggestion is not a tag: nothing is stored or sent as one.
    assert page.evaluate("twinlabel.store.serialize().tags") == []
    assert not ImageTag.objects.filter(image_id=image_id).exists()
    page.keyboard.press("?")
    help_text = page.text_content("#help")
    for key in ["⇧A", "Alt+O", "Accept the ringed suggested tag", "Reject the ringed suggested tag"]:
        assert key in help_text
    assert page.console_errors == []


def test_a_page_without_suggestions_shows_none(server, page):
    project, ids, cat, dog, bird = _project()
    _open(page, server, project)
    assert page.locator("#tag-list .suggested").count() == 0
    assert page.locator("#accept-all").is_hidden()
    page.keyboard.press("a")  # nothing to accept: nothing happens
    page.keyboard.press("r")
    assert page.get_attribute("#save-status", "data-status") == "saved"
    assert not SuggestionDecision.objects.exists()


# ---- deciding ------------------------------------------------------------------------------------


def test_a_accepts_the_ringed_suggestion_and_r_rejects(server, page):
    project, ids, cat, dog, bird = _pets_with_suggestions()
    image_id = _open(page, server, project)
    page.keyboard.press("a")  # dog, the likeliest
    _decided(page, dog, "from-model")
    assert _tag(page, dog).get_attribute("aria-checked") == "true"
    assert "model" in _tag(page, dog).text_content()
    assert _db_tags(image_id) == {"dog": Source.MODEL}
    assert _decisions(image_id) == {"dog": Decision.ACCEPTED}
    # The store took the answer's version: the next save is not a conflict.
    assert page.evaluate("twinlabel.store.image.version") == Image.objects.get(pk=image_id).version == 2
    assert "focused" in _classes(_row(page, cat))  # the ring moved on
    page.keyboard.press("r")
    _decided(page, cat, "rejected")
    assert _tag(page, cat).get_attribute("aria-checked") == "false"
    assert _row(page, cat).locator(".suggest-actions").is_hidden()
    assert _decisions(image_id) == {"dog": Decision.ACCEPTED, "cat": Decision.REJECTED}
    assert _db_tags(image_id) == {"dog": Source.MODEL}  # a rejection adds no tag
    assert page.locator("#accept-all").is_hidden()
    assert page.evaluate("twinlabel.store.serialize().tags") == [dog.id]
    assert page.console_errors == []


def test_a_click_rings_a_suggestion_and_its_buttons_decide_it(server, page):
    project, ids, cat, dog, bird = _pets_with_suggestions()
    image_id = _open(page, server, project)
    _tag(page, cat).click()  # rings cat; does not toggle it as a person's tag
    assert "focused" in _classes(_row(page, cat))
    assert page.evaluate("twinlabel.store.serialize().tags") == []
    page.keyboard.press("a")
    _decided(page, cat, "from-model")
    assert _decisions(image_id) == {"cat": Decision.ACCEPTED}
    _row(page, dog).locator("button.reject").click()
    _decided(page, dog, "rejected")
    assert _decisions(image_id) == {"cat": Decision.ACCEPTED, "dog": Decision.REJECTED}
    assert _db_tags(image_id) == {"cat": Source.MODEL}


def test_shift_a_accepts_every_suggested_tag(server, page):
    project, ids, cat, dog, bird = _pets_with_suggestions()
    image_id = _open(page, server, project)
    page.keyboard.press("Shift+A")
    _decided(page, cat, "from-model")
    assert "from-model" in _classes(_tag(page, dog))
    assert _db_tags(image_id) == {"cat": Source.MODEL, "dog": Source.MODEL}
    assert _decisions(image_id) == {"cat": Decision.ACCEPTED, "dog": Decision.ACCEPTED}  # bird was not suggested
    assert page.locator("#accept-all").is_hidden()
    assert sorted(page.evaluate("twinlabel.store.serialize().tags")) == sorted([cat.id, dog.id])


def test_an_accepted_tag_survives_pending_and_later_edits_and_undo(server, page):
    project, ids, cat, dog, bird = _pets_with_suggestions()
    image_id = _open(page, server, project)
    _drag_image(page, (10, 10), (60, 60))  # still waiting for autosave when A is pressed
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    _decided(page, dog, "from-model")
    assert Box.objects.filter(image_id=image_id).count() == 1  # saved first, then accepted
    assert Image.objects.get(pk=image_id).version == 3  # the save, then the decision
    _drag_image(page, (100, 100), (200, 200))
    _saved(page)
    assert Box.objects.filter(image_id=image_id).count() == 2
    assert _db_tags(image_id) == {"dog": Source.MODEL}  # the PUT kept it, and its source
    # Undoing edits from before the accept does not take the accepted tag away.
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    _saved(page)
    assert not Box.objects.filter(image_id=image_id).exists()
    assert _db_tags(image_id) == {"dog": Source.MODEL}
    assert page.locator("#conflict-banner").is_hidden()
    page.reload()
    page.wait_for_selector(READY)
    assert "from-model" in _classes(_tag(page, dog))
    assert page.console_errors == []


# ---- the queue order -------------------------------------------------------------------------------


def test_the_order_switch_serves_the_most_uncertain_image_next(server, page):
    project, ids, cat, dog, bird = _project(images=8)
    run = _probe(project)
    scores = {ids[1]: 0.10, ids[2]: 0.35, ids[4]: 0.93, ids[5]: 0.61}
    ImageUncertainty.objects.bulk_create([ImageUncertainty(run=run, image_id=i, score=s) for i, s in scores.items()])
    _suggest(run, ids[6], (dog, 0.80, True))
    _suggest(run, ids[3], (dog, 0.95, True))
    _suggest(run, ids[7], (dog, 0.30, False))  # below the threshold: not suggested as dog
    first = _open(page, server, project)
    assert first == ids[0]
    assert page.input_value("#queue-order") == "sequential"
    page.keyboard.press("Alt+o")
    assert page.evaluate("document.activeElement.id") == "queue-order"
    page.select_option("#queue-order", "uncertain")
    assert page.evaluate("document.activeElement.id") != "queue-order"  # the keys work again at once
    assert re.search(r"[?&]order=uncertain\b", page.url)
    page.keyboard.press("ArrowRight")
    _wait_image(page, ids[4])  # the most uncertain, although ids[1] was already prefetched
    image = Image.objects.get(pk=ids[4])
    assert image.status == ImageStatus.IN_PROGRESS and image.locked_by.username == "owner"
    page.keyboard.press("ArrowRight")
    _wait_image(page, ids[5])
    # Suggested as "dog", likeliest first.
    page.select_option("#queue-order", f"label:{dog.id}")
    assert f"order=label%3A{dog.id}" in page.url
    page.keyboard.press("ArrowRight")
    _wait_image(page, ids[3])
    page.keyboard.press("ArrowRight")
    _wait_image(page, ids[6])
    # Nothing else is suggested as dog: the page says so, and why.
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#done:not([hidden])")
    assert "suggested as “dog”" in page.text_content("#done-why")
    # A reload keeps the order.
    page.reload()
    page.wait_for_selector(READY)
    assert page.input_value("#queue-order") == f"label:{dog.id}"
    assert page.console_errors == []
