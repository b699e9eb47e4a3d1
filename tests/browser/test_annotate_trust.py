"""Suggestions you can trust on the annotate page, in real Chromium against the real server: a
suggestion that has not proven its precision (not confident) is a ranked probability only, never
pre-ticked, never accepted by ⇧A; and while the model is near chance the page says so in one line
instead of showing numbers. The runs and suggestions are rows made with the ORM: nothing is trained."""

from __future__ import annotations

import pytest

from annotator.models import ImageTag
from labeling.models import SuggestionDecision
from tests.browser.test_annotate import _open, _saved
from tests.browser.test_annotate_suggestions import _classes, _project, _probe, _row, _suggest, _tag

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_a_suggestion_that_is_not_confident_is_never_pre_ticked_nor_accepted_in_bulk(server, page):
    project, ids, cat, dog, bird = _project()
    run = _probe(project)
    # dog passed its label's precision bound (confident); cat's label did not, though 71 % is likely.
    _suggest(run, ids[0], (cat, 0.71, False), (dog, 0.64, True), (bird, 0.05, False))
    image_id = _open(page, server, project)
    assert "suggested" in _classes(_tag(page, dog))
    assert "suggested" not in _classes(_tag(page, cat)) and "71%" in _tag(page, cat).text_content()
    assert _row(page, cat).locator(".suggest-actions").is_hidden()
    assert page.text_content("#accept-all .n") == "1"
    assert page.locator("#model-note").is_hidden()
    page.keyboard.press("Shift+A")
    page.wait_for_selector(f"#tag-list [data-label='{dog.id}'].from-model")
    _saved(page)
    assert dict(ImageTag.objects.filter(image_id=image_id).values_list("label__name", "source")) == {"dog": "model"}
    assert not SuggestionDecision.objects.filter(label=cat).exists()
    assert page.console_errors == []


def test_a_model_near_chance_says_it_is_still_learning_instead_of_showing_numbers(server, page):
    project, ids, cat, dog, bird = _project()
    run = _probe(project)
    line = "the model is still learning: 4 more labels of bird would help"
    run.metrics = {"trust": {"still_learning": line}}
    run.save()
    _suggest(run, ids[0], (cat, 0.41, False), (dog, 0.38, False), (bird, 0.22, False))
    _open(page, server, project)
    assert page.locator("#model-note").is_visible()
    assert page.text_content("#model-note") == line
    for label in (cat, dog, bird):
        assert "%" not in _tag(page, label).text_content()  # no confident-looking numbers
    assert page.locator("#accept-all").is_hidden()
    assert page.console_errors == []
