"""The detector's suggested boxes on the annotate page, in real Chromium against the real server:
drawn dashed with label and score, walked with Tab, accepted (A, ⇧A) into boxes marked "model",
rejected (R), a click rings one, U takes a decision back. The suggestions are rows made with the
ORM: nothing is trained."""

from __future__ import annotations

import pytest

from annotator.models import Box, Image, LabelClass, Source
from labeling.models import BoxSuggestion, BoxSuggestionDecision, ProjectModelState, RunKind, RunStatus, TrainingRun
from tests.browser.test_annotate import _click_image, _open, _saved, _drag_image
from tests.factories import add_images, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _project():
    project = make_project(owner=make_user("owner"), labels=("cat", "dog"), name="Pets")
    ids = add_images(project, 2, size=(400, 300))
    cat, dog = LabelClass.objects.filter(project=project).order_by("order")
    run = TrainingRun.objects.create(project=project, kind=RunKind.DETECTOR, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=project, detector_run=run)
    rows = [
        BoxSuggestion(run=run, image_id=ids[0], label=cat, x=20, y=20, w=100, h=80, score=0.91, predicted=True),
        BoxSuggestion(run=run, image_id=ids[0], label=dog, x=200, y=120, w=120, h=100, score=0.84, predicted=True),
        BoxSuggestion(run=run, image_id=ids[0], label=dog, x=250, y=10, w=60, h=50, score=0.45, predicted=False),
        BoxSuggestion(run=run, image_id=ids[0], label=cat, x=5, y=250, w=30, h=30, score=0.1, predicted=False),
    ]
    BoxSuggestion.objects.bulk_create(rows)
    return project, ids, cat, dog, list(BoxSuggestion.objects.order_by("-score"))


def _decisions(image_id):
    return dict(BoxSuggestionDecision.objects.filter(image_id=image_id).values_list("suggestion_id", "decision"))


def _db_boxes(image_id):
    return sorted(Box.objects.filter(image_id=image_id).values_list("label__name", "x", "y", "source"))


def _settled(page, decided):
    page.wait_for_function(
        f"() => twinlabel.store.boxSuggestions.filter((s) => s.decision).length === {decided}"
        " && !twinlabel.session.busy"
    )
    _saved(page)


def test_suggested_boxes_are_shown_walked_with_tab_and_decided_with_a_and_r(server, page):
    project, ids, cat, dog, suggested = _project()
    image_id = _open(page, server, project)
    assert image_id == ids[0]
    shown = page.evaluate("twinlabel.store.shownBoxSuggestions().map((s) => s.id)")
    assert shown == [s.id for s in suggested[:3]]  # the 10 % one is not drawn
    assert page.locator("#box-suggest-hint").is_visible() and page.text_content("#box-suggest-hint .n") == "3"
    assert page.evaluate("twinlabel.store.serialize().boxes") == []  # a suggestion is not a box

    page.keyboard.press("Tab")
    assert page.evaluate("twinlabel.store.focusedBoxSuggestion().id") == suggested[0].id
    page.keyboard.press("Tab")
    assert page.evaluate("twinlabel.store.focusedBoxSuggestion().id") == suggested[1].id
    page.keyboard.press("a")  # the dog box
    _settled(page, 1)
    assert _db_boxes(image_id) == [("dog", 200, 120, Source.MODEL)]
    assert _decisions(image_id) == {suggested[1].id: "accepted"}
    assert page.evaluate("twinlabel.store.boxes.map((b) => b.source)") == ["model"]
    assert page.evaluate("twinlabel.store.image.version") == Image.objects.get(pk=image_id).version

    _click_image(page, 270, 30)  # rings the 45 % one
    assert page.evaluate("twinlabel.store.focusedBoxSuggestion().id") == suggested[2].id
    page.keyboard.press("r")
    _settled(page, 2)
    assert _decisions(image_id) == {suggested[1].id: "accepted", suggested[2].id: "rejected"}
    assert len(_db_boxes(image_id)) == 1  # a rejection adds no box

    page.keyboard.press("u")  # takes the rejection back
    _settled(page, 1)
    assert _decisions(image_id) == {suggested[1].id: "accepted"}
    page.keyboard.press("?")
    assert "Ring the next / previous suggested box" in page.text_content("#help")
    assert page.console_errors == []


def test_shift_a_accepts_the_confident_boxes_and_a_later_edit_keeps_them(server, page):
    project, ids, cat, dog, suggested = _project()
    image_id = _open(page, server, project)
    _drag_image(page, (150, 250), (190, 290))  # a person's box, not yet saved when ⇧A comes
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+A")
    _settled(page, 2)
    assert _db_boxes(image_id) == [
        ("cat", 20, 20, Source.MODEL),
        ("cat", 150, 250, Source.HUMAN),
        ("dog", 200, 120, Source.MODEL),
    ]
    # Undo takes the drawn box back, not the accepted ones; the save keeps their source.
    page.keyboard.press("Control+z")
    _saved(page)
    assert _db_boxes(image_id) == [("cat", 20, 20, Source.MODEL), ("dog", 200, 120, Source.MODEL)]
    assert page.locator("#conflict-banner").is_hidden()
    assert page.console_errors == []


def test_an_external_models_boxes_imported_as_coco_results_show_and_are_accepted(server, page):
    """Issue 18: another model's box predictions (a COCO results file) become the current box
    suggestions and go through the same UI."""
    import json

    from labeling.external import predictions_import

    project = make_project(owner=make_user("owner"), labels=("cat", "dog"), name="Pets")
    ids = add_images(project, 2, size=(400, 300))
    results = [
        {"image_id": ids[0], "category_id": 2, "bbox": [200, 120, 120, 100], "score": 0.8},
        {"image_id": ids[0], "category_id": 1, "bbox": [20, 20, 100, 80], "score": 0.6},
    ]
    report = predictions_import(
        project=project, user=None, fmt="coco", files=[("r.json", json.dumps(results).encode())], model_version="yolo-x"
    )
    assert report.boxes_stored == 2
    image_id = _open(page, server, project)
    assert image_id == ids[0]
    shown = page.evaluate("twinlabel.store.shownBoxSuggestions().map((s) => [s.x, s.y, s.score])")
    assert shown == [[200, 120, 0.8], [20, 20, 0.6]]
    page.keyboard.press("Tab")
    page.keyboard.press("a")
    _settled(page, 1)
    assert _db_boxes(image_id) == [("dog", 200, 120, Source.MODEL)]


def _db_geometry(image_id):
    return [
        (name, round(x), round(y), round(w), round(h), source)
        for name, x, y, w, h, source in Box.objects.filter(image_id=image_id).values_list(
            "label__name", "x", "y", "w", "h", "source"
        )
    ]


def test_dragging_a_handle_of_the_ringed_suggestion_accepts_it_adjusted_and_u_takes_it_back(server, page):
    project, ids, cat, dog, suggested = _project()
    image_id = _open(page, server, project)
    page.keyboard.press("Tab")  # rings the cat box (20, 20, 100 x 80): its handles are drawn
    assert page.evaluate("twinlabel.store.focusedBoxSuggestion().id") == suggested[0].id
    _drag_image(page, (120, 100), (150, 130))  # its south-east handle
    _settled(page, 1)
    assert _db_geometry(image_id) == [("cat", 20, 20, 130, 110, Source.MODEL_ADJUSTED)]
    assert _decisions(image_id) == {suggested[0].id: "adjusted"}
    assert page.evaluate("twinlabel.store.boxes.map((b) => [b.source, Math.round(b.w), Math.round(b.h)])") == [
        ["model_adjusted", 130, 110]
    ]
    assert page.evaluate("twinlabel.store.boxDraft") is None
    assert page.evaluate("twinlabel.store.image.version") == Image.objects.get(pk=image_id).version

    page.keyboard.press("u")  # the adjusted accept is taken back: its box and its decision go
    _settled(page, 0)
    assert _db_geometry(image_id) == [] and _decisions(image_id) == {}
    assert page.evaluate("twinlabel.store.boxes.length") == 0

    # Alt+drag inside a suggested box moves it whole: accepted at the moved geometry.
    page.keyboard.down("Alt")
    _drag_image(page, (260, 170), (240, 160))  # inside the dog box (200, 120, 120 x 100)
    page.keyboard.up("Alt")
    _settled(page, 1)
    assert _db_geometry(image_id) == [("dog", 180, 110, 120, 100, Source.MODEL_ADJUSTED)]
    assert _decisions(image_id) == {suggested[1].id: "adjusted"}
    assert page.console_errors == []


def _until(read, expected, seconds: float = 15.0):
    """``read()`` once it equals ``expected`` (the page saves a moment after an edit), else its last value."""
    import time

    deadline = time.monotonic() + seconds
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def test_an_adjusted_box_dragged_or_nudged_again_stays_the_models(server, page):
    """Issue 16: a second drag of an accepted box's handle stored it as "human"; the page now says
    the box is the model's, adjusted, and the server checks that the image held one."""
    project, ids, cat, dog, suggested = _project()
    image_id = _open(page, server, project)
    page.keyboard.press("Tab")
    _drag_image(page, (120, 100), (150, 130))  # accepted, adjusted: 20, 20, 130 x 110
    _settled(page, 1)
    _click_image(page, 60, 60)  # selects that box
    page.wait_for_function("() => twinlabel.store.selected !== null")
    _drag_image(page, (150, 130), (170, 140))  # its south-east handle, again
    expected = [("cat", 20, 20, 150, 120, Source.MODEL_ADJUSTED)]
    assert _until(lambda: _db_geometry(image_id), expected) == expected
    page.keyboard.press("ArrowRight")  # a nudge keeps it the model's too
    expected = [("cat", 21, 20, 150, 120, Source.MODEL_ADJUSTED)]
    assert _until(lambda: _db_geometry(image_id), expected) == expected
    assert page.evaluate("twinlabel.store.boxes.map((b) => b.source)") == ["model_adjusted"]
    assert page.console_errors == []


def test_a_detector_that_draws_nothing_says_so_in_one_line_and_a_drawn_box_hides_the_line(server, page):
    project, ids, cat, dog, suggested = _project()
    note = "No suggested boxes yet: the detector's boxes are still wrong too often to save time."
    TrainingRun.objects.filter(kind=RunKind.DETECTOR).update(metrics={"trust": {"box_note": note}})
    BoxSuggestion.objects.update(shown=False, predicted=False)  # none worth a look, none confident
    _open(page, server, project)
    assert page.evaluate("twinlabel.store.shownBoxSuggestions().length") == 0
    assert page.locator("#box-note").is_visible() and page.text_content("#box-note") == note
    assert not page.locator("#box-suggest-hint").is_visible()
    # One drawn box (an older run's rows, say) and the hint speaks instead of the note.
    page.evaluate(
        "twinlabel.store.boxSuggestions = twinlabel.store.boxSuggestions.map((s, i) => ({...s, shown: i === 0}));"
        " twinlabel.store.emit('boxSuggestions')"
    )
    assert page.locator("#box-suggest-hint").is_visible() and not page.locator("#box-note").is_visible()
    assert page.console_errors == []
