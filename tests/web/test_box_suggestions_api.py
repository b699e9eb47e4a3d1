"""Box suggestions through the API: in the annotate state, accept (source "model"), accept with a
changed geometry ("model_adjusted"), reject, undo, accept-all; owner / annotator / reviewer / outsider."""

import json

import pytest
from django.urls import reverse

from annotator.models import Box, Image, LabelBoxCount
from labeling.models import BoxSuggestion, BoxSuggestionDecision, ProjectModelState, RunKind, RunStatus, TrainingRun

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=3)]


@pytest.fixture
def suggested(team):
    """A finished detector run, current, with three boxes on the first image (two confident)."""
    run = TrainingRun.objects.create(project=team.project, kind=RunKind.DETECTOR, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=team.project, detector_run=run)
    image = Image.objects.get(pk=team.ids[0])
    rows = [
        BoxSuggestion.objects.create(
            run=run, image=image, label=team.cat, x=10, y=10, w=30, h=20, score=0.9, predicted=True
        ),
        BoxSuggestion.objects.create(
            run=run, image=image, label=team.dog, x=50, y=40, w=20, h=20, score=0.8, predicted=True
        ),
        BoxSuggestion.objects.create(
            run=run, image=image, label=team.dog, x=60, y=5, w=10, h=10, score=0.2, predicted=False
        ),
    ]
    return image, rows


def _post(client, user, image_id, suggestion_id, decision, body=None):
    client.force_login(user)
    return client.post(
        reverse("api_box_suggestion_decide", args=[image_id, suggestion_id, decision]),
        json.dumps(body or {}),
        content_type="application/json",
    )


def test_it_shows_the_current_detectors_boxes_in_the_annotate_state(client, team, suggested):
    image, rows = suggested
    client.force_login(team.annotator)
    state = client.get(reverse("api_image_annotations", args=[image.id])).json()
    assert [s["id"] for s in state["box_suggestions"]] == [r.id for r in rows]  # best first
    first = state["box_suggestions"][0]
    assert first == {
        "id": rows[0].id,
        "label": team.cat.id,
        "x": 10.0,
        "y": 10.0,
        "w": 30.0,
        "h": 20.0,
        "score": 0.9,
        "predicted": True,
        "shown": True,
        "decision": None,
    }
    other = client.get(reverse("api_image_annotations", args=[team.ids[1]])).json()
    assert other["box_suggestions"] == []


def test_accept_makes_a_model_box_and_an_adjusted_accept_a_model_adjusted_one(client, team, suggested):
    image, rows = suggested
    state = _post(client, team.annotator, image.id, rows[0].id, "accept").json()
    assert [(b["label"], b["x"], b["w"], b["source"]) for b in state["boxes"]] == [(team.cat.id, 10, 30, "model")]
    state = _post(client, team.annotator, image.id, rows[1].id, "accept", {"x": 48, "y": 40, "w": 25, "h": 20}).json()
    adjusted = [b for b in state["boxes"] if b["label"] == team.dog.id]
    assert [(b["x"], b["w"], b["source"]) for b in adjusted] == [(48, 25, "model_adjusted")]
    decisions = dict(BoxSuggestionDecision.objects.values_list("suggestion_id", "decision"))
    assert decisions == {rows[0].id: "accepted", rows[1].id: "adjusted"}
    # What was shown is kept with the decision, whatever the box became.
    assert BoxSuggestionDecision.objects.get(suggestion_id=rows[1].id).x == 50
    image.refresh_from_db()
    assert image.version == 3 and image.box_count == 2
    assert sum(LabelBoxCount.objects.filter(label=team.dog).values_list("count", flat=True)) == 1
    assert {s["id"]: s["decision"] for s in state["box_suggestions"]}[rows[1].id] == "adjusted"


def test_reject_records_the_decision_and_adds_no_box(client, team, suggested):
    image, rows = suggested
    state = _post(client, team.annotator, image.id, rows[2].id, "reject").json()
    assert state["boxes"] == [] and state["image"]["version"] == 2
    assert BoxSuggestionDecision.objects.get().decision == "rejected"
    again = _post(client, team.annotator, image.id, rows[2].id, "accept")
    assert again.status_code == 400 and "decided already" in again.json()["error"]


def test_undo_takes_the_box_and_the_decision_back(client, team, suggested):
    image, rows = suggested
    _post(client, team.annotator, image.id, rows[0].id, "accept")
    state = _post(client, team.annotator, image.id, rows[0].id, "undo").json()
    assert state["boxes"] == [] and not BoxSuggestionDecision.objects.exists()
    assert state["box_suggestions"][0]["decision"] is None
    image.refresh_from_db()
    assert image.box_count == 0


def test_a_saved_edit_keeps_an_unmoved_model_box_model_and_makes_a_moved_one_human(client, team, suggested):
    image, rows = suggested
    state = _post(client, team.annotator, image.id, rows[0].id, "accept").json()
    state = _post(client, team.annotator, image.id, rows[1].id, "accept").json()
    boxes = [{k: b[k] for k in ("label", "x", "y", "w", "h")} for b in state["boxes"]]
    boxes[1]["x"] += 3
    saved = client.put(
        reverse("api_image_annotations", args=[image.id]),
        json.dumps({"version": state["image"]["version"], "boxes": boxes, "tags": []}),
        content_type="application/json",
    ).json()
    assert [b["source"] for b in saved["boxes"]] == ["model", "human"]


def test_accept_all_takes_the_confident_undecided_ones(client, team, suggested):
    image, rows = suggested
    _post(client, team.annotator, image.id, rows[1].id, "reject")
    client.force_login(team.annotator)
    state = client.post(reverse("api_box_suggestions_accept_all", args=[image.id])).json()
    assert [(b["label"], b["source"]) for b in state["boxes"]] == [(team.cat.id, "model")]
    assert Box.objects.count() == 1  # the rejected one and the unconfident one stay out


@pytest.mark.parametrize("body", [{"x": 1}, {"x": "a", "y": 1, "w": 1, "h": 1}, {"x": 500, "y": 500, "w": 5, "h": 5}])
def test_a_bad_adjusted_geometry_is_a_400_and_stores_nothing(client, team, suggested, body):
    image, rows = suggested
    response = _post(client, team.annotator, image.id, rows[0].id, "accept", body)
    assert response.status_code == 400
    assert not Box.objects.exists() and not BoxSuggestionDecision.objects.exists()


def test_access_owner_annotator_reviewer_outsider(client, team, suggested):
    image, rows = suggested
    assert _post(client, team.owner, image.id, rows[0].id, "accept").status_code == 200
    assert _post(client, team.reviewer, image.id, rows[1].id, "accept").status_code == 403
    assert _post(client, team.outsider, image.id, rows[1].id, "accept").status_code == 404
    client.logout()
    anonymous = client.post(reverse("api_box_suggestion_decide", args=[image.id, rows[1].id, "reject"]))
    assert anonymous.status_code in (401, 403)
    assert list(BoxSuggestionDecision.objects.values_list("suggestion_id", flat=True)) == [rows[0].id]
    # A suggestion of another image through this image's URL is not found.
    assert _post(client, team.annotator, team.ids[1], rows[1].id, "accept").status_code == 400


def test_rejected_boxes_withdraw_their_labels_confidence_at_once_and_an_adjust_counts_as_right(client, team, suggested):
    from labeling.ml.confidence import wilson_lower

    image, rows = suggested
    run = rows[0].run
    # Both labels proved 30 of 30 on the held-out images at 0.5 (bound 0.917 >= 0.9); 30 of 31 does not.
    assert wilson_lower(30, 30) >= 0.9 > wilson_lower(30, 31)
    entry = {"target": 0.9, "confident": True, "threshold": 0.5, "predictions": 30, "correct": 30}
    run.metrics = {"trust": {"labels": [{**entry, "label_id": team.cat.id}, {**entry, "label_id": team.dog.id}]}}
    run.save(update_fields=["metrics"])
    other = BoxSuggestion.objects.create(
        run=run, image_id=team.ids[1], label=team.cat, x=5, y=5, w=20, h=20, score=0.7, predicted=True
    )
    # An adjusted dog is a right one (31 of 31): dog stays confident.
    _post(client, team.annotator, image.id, rows[1].id, "accept", {"x": 48, "y": 40, "w": 25, "h": 20})
    assert BoxSuggestion.objects.filter(label=team.dog, predicted=True).exists()
    # A rejected cat: 30 of 31, bound 0.868 < 0.9: every cat box of the run stops being confident.
    state = _post(client, team.annotator, image.id, rows[0].id, "reject").json()
    assert not BoxSuggestion.objects.filter(label=team.cat, predicted=True).exists()
    other.refresh_from_db()
    assert other.predicted is False
    run.refresh_from_db()
    cat_entry, dog_entry = run.metrics["trust"]["labels"]
    assert (cat_entry["confident"], cat_entry["threshold"]) == (False, None)
    assert cat_entry["withdrawn"]["measured"] == 31
    assert dog_entry["confident"] is True and "withdrawn" not in dog_entry
    assert {s["id"]: s["predicted"] for s in state["box_suggestions"]}[rows[0].id] is False


def test_decisions_below_the_labels_threshold_do_not_count_towards_its_precision(client, team, suggested):
    image, rows = suggested
    run = rows[0].run
    entry = {"target": 0.9, "confident": True, "threshold": 0.5, "predictions": 30, "correct": 30}
    run.metrics = {"trust": {"labels": [{**entry, "label_id": team.dog.id}]}}
    run.save(update_fields=["metrics"])
    _post(client, team.annotator, image.id, rows[2].id, "reject")  # the 0.2 dog: ranked, not confident
    assert BoxSuggestion.objects.get(pk=rows[1].id).predicted is True
    run.refresh_from_db()
    assert run.metrics["trust"]["labels"][0]["confident"] is True


def _put(client, image_id: int, version: int, boxes: list[dict]) -> dict:
    response = client.put(
        f"/api/images/{image_id}/annotations/",
        json.dumps({"version": version, "tags": [], "boxes": boxes}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_an_accepted_box_moved_again_stays_model_adjusted_and_a_claim_needs_a_model_box(client, team, suggested):
    """Issue 16: a second drag of an accepted (adjusted) box kept it the model's; a box a person drew
    cannot claim to be the model's beyond the model's boxes the image held."""
    image, rows = suggested
    assert _post(client, team.annotator, image.id, rows[0].id, "accept").status_code == 200
    version = Image.objects.get(pk=image.id).version
    box = {"label": team.cat.id, "x": 10, "y": 10, "w": 30, "h": 20}
    # Left in place: still "model" (by its geometry, no claim needed).
    state = _put(client, image.id, version, [box])
    assert [b["source"] for b in state["boxes"]] == ["model"]
    # Moved, with the page's claim: "model_adjusted"; moved again: still "model_adjusted".
    state = _put(client, image.id, state["image"]["version"], [{**box, "x": 14, "source": "model_adjusted"}])
    assert [b["source"] for b in state["boxes"]] == ["model_adjusted"]
    state = _put(client, image.id, state["image"]["version"], [{**box, "x": 18, "w": 25, "source": "model_adjusted"}])
    assert [(b["source"], b["x"], b["w"]) for b in state["boxes"]] == [("model_adjusted", 18.0, 25.0)]
    assert list(Box.objects.filter(image=image).values_list("source", flat=True)) == ["model_adjusted"]
    # Two claims where the image held one box of the model's: one honoured, the other is the person's.
    drawn = {"label": team.dog.id, "x": 60, "y": 50, "w": 10, "h": 10, "source": "model_adjusted"}
    state = _put(client, image.id, state["image"]["version"], [{**box, "x": 20, "source": "model_adjusted"}, drawn])
    assert sorted(b["source"] for b in state["boxes"]) == ["human", "model_adjusted"]
    # An image with none of the model's boxes honours no claim; a source that is not text is refused.
    other = Image.objects.get(pk=team.ids[1])
    state = _put(client, other.id, other.version, [drawn])
    assert [b["source"] for b in state["boxes"]] == ["human"]
    refused = client.put(
        f"/api/images/{other.id}/annotations/",
        json.dumps({"version": state["image"]["version"], "tags": [], "boxes": [{**drawn, "source": 3}]}),
        content_type="application/json",
    )
    assert refused.status_code == 400 and "source" in refused.content.decode()


def test_rejections_stop_drawing_a_labels_unconfident_boxes_at_once(client, team, suggested):
    """The show rule's live half: the held-out counts at a label's "shown_from" plus the decisions on
    its boxes from there up; under SHOW_PRECISION its boxes that are not confident stop being drawn."""
    from labeling.ml.confidence import wilson_lower
    from labeling.trust import SHOW_PRECISION, _previous_box_shown

    image, rows = suggested
    run = rows[0].run
    # dog: confident from 0.7 (30 of 30), drawn from 0.15 on 8 of 12 right (bound 0.431 >= 0.4).
    assert wilson_lower(8, 12) >= SHOW_PRECISION > wilson_lower(8, 13)
    dog = {"label_id": team.dog.id, "target": 0.9, "confident": True, "threshold": 0.7, "predictions": 30}
    dog.update(correct=30, shown_from=0.15, shown_counts={"predictions": 12, "correct": 8})
    # cat: drawn from the page's floor, nothing held out to judge it by (no counts): left to the fit.
    cat = {"label_id": team.cat.id, "target": 0.9, "confident": False, "threshold": None, "shown_from": 0.3}
    run.metrics = {"trust": {"labels": [cat, dog]}}
    run.save(update_fields=["metrics"])
    second = team.ids[1]
    below = BoxSuggestion.objects.create(
        run=run, image_id=second, label=team.dog, x=5, y=5, w=9, h=9, score=0.1, predicted=False, shown=False
    )
    drawn = BoxSuggestion.objects.create(
        run=run, image_id=second, label=team.dog, x=30, y=30, w=9, h=9, score=0.25, predicted=False
    )
    cat_drawn = BoxSuggestion.objects.create(
        run=run, image_id=second, label=team.cat, x=50, y=50, w=9, h=9, score=0.5, predicted=False
    )
    # A rejected cat: cat has no counts to add to, so one rejection hides nothing.
    _post(client, team.annotator, image.id, rows[0].id, "reject")
    # A rejection under the label's shown_from was not drawn: it does not count.
    _post(client, team.annotator, second, below.id, "reject")
    assert BoxSuggestion.objects.get(pk=drawn.id).shown is True
    # A drawn dog rejected: 8 of 13, bound 0.393 < 0.4: the dog boxes that are not confident go.
    _post(client, team.annotator, image.id, rows[2].id, "reject")
    assert BoxSuggestion.objects.get(pk=drawn.id).shown is False
    assert BoxSuggestion.objects.get(pk=rows[1].id).shown is True  # confident: drawn anyway
    assert BoxSuggestion.objects.get(pk=rows[1].id).predicted is True
    assert BoxSuggestion.objects.get(pk=cat_drawn.id).shown is True
    run.refresh_from_db()
    cat_entry, dog_entry = run.metrics["trust"]["labels"]
    assert dog_entry["shown_from"] == 0.7 and dog_entry["confident"] is True
    assert dog_entry["shown_withdrawn"]["measured"] == 13 and dog_entry["shown_withdrawn"]["shown_from"] == 0.15
    assert cat_entry["shown_from"] == 0.3 and "shown_withdrawn" not in cat_entry
    # The next fit pools the decisions from where the boxes were drawn, not from the cutoff after.
    state = ProjectModelState.objects.select_related("detector_run").get(project=team.project)
    assert _previous_box_shown(state)[team.dog.id] == 0.3  # 0.15, never under the page's floor
    client.force_login(team.annotator)
    served = client.get(reverse("api_image_annotations", args=[second])).json()["box_suggestions"]
    assert {s["id"]: s["shown"] for s in served}[drawn.id] is False


def test_rejections_raise_a_labels_shown_from_before_they_hide_all_its_boxes(client, team, suggested):
    """With the fit's counts at the cutoffs above "shown_from" ("shown_steps"), a rejection that pulls
    the bound under SHOW_PRECISION raises the cutoff to the lowest one still precise enough (its
    held-out counts plus the decisions from there up) and hides only the boxes under it; with none
    left under the confident threshold, all the label's unconfident boxes go."""
    from labeling.ml.confidence import wilson_lower
    from labeling.trust import SHOW_PRECISION, _previous_box_shown

    image, rows = suggested
    run = rows[0].run
    assert wilson_lower(8, 13) < SHOW_PRECISION <= wilson_lower(7, 10)  # step 1
    assert wilson_lower(7, 11) < SHOW_PRECISION <= wilson_lower(7, 9)  # steps 2 and 3
    dog = {"label_id": team.dog.id, "target": 0.9, "confident": True, "threshold": 0.7, "predictions": 30}
    dog.update(correct=30, shown_from=0.32, shown_counts={"predictions": 12, "correct": 8})
    # 0.75 is above the confident threshold: never a cutoff to raise to (those boxes are drawn anyway).
    dog["shown_steps"] = [[0.32, 12, 8], [0.36, 10, 7], [0.42, 9, 7], [0.75, 4, 4]]
    run.metrics = {"trust": {"labels": [dog]}}
    run.save(update_fields=["metrics"])

    def box(score):
        return BoxSuggestion.objects.create(
            run=run, image_id=team.ids[1], label=team.dog, x=score * 100, y=5, w=9, h=9, score=score, predicted=False
        ).id

    first, low, quarter, mid, high, top = (box(s) for s in (0.33, 0.34, 0.38, 0.4, 0.55, 0.6))

    def shown():
        return set(BoxSuggestion.objects.filter(label=team.dog, shown=True).values_list("id", flat=True))

    def entry():
        run.refresh_from_db()
        return run.metrics["trust"]["labels"][0]

    # 1. 8 of 13 at 0.32: raised to 0.36 (7 of 10, no decision from there up); 0.33 and 0.34 hidden.
    _post(client, team.annotator, team.ids[1], first, "reject")
    assert shown() == {rows[1].id, quarter, mid, high, top}
    assert (entry()["shown_from"], entry()["shown_counts"]) == (0.36, {"predictions": 10, "correct": 7})
    assert entry()["shown_raised"]["shown_from"] == 0.32 and entry()["shown_raised"]["measured"] == 13
    # 2. 7 of 11 at 0.36 (the rejected 0.4 counts there): raised to 0.42, where it does not count.
    _post(client, team.annotator, team.ids[1], mid, "reject")
    assert shown() == {rows[1].id, high, top}
    assert entry()["shown_from"] == 0.42 and entry()["shown_raised"]["shown_from"] == 0.32
    # A rejection at 0.55: 7 of 10 at 0.42, still precise enough (a decided box keeps its flag).
    _post(client, team.annotator, team.ids[1], high, "reject")
    assert shown() == {rows[1].id, high, top} and entry()["shown_from"] == 0.42
    # 3. 7 of 11 at 0.42, and no cutoff above it under 0.7: all the unconfident ones go.
    _post(client, team.annotator, team.ids[1], top, "reject")
    assert shown() == {rows[1].id}
    assert entry()["shown_from"] == 0.7 and entry()["shown_withdrawn"]["shown_from"] == 0.32
    # The next fit pools the decisions from where the fit drew the boxes.
    state = ProjectModelState.objects.select_related("detector_run").get(project=team.project)
    assert _previous_box_shown(state)[team.dog.id] == 0.32


def test_decisions_on_an_imports_boxes_judge_its_box_trust_not_its_tag_trust(client, team, suggested):
    """An external import keeps its boxes' trust under "boxes" (its "trust" judges its tags): a
    rejected imported box withdraws the box entry and leaves the tag entry alone."""
    image, rows = suggested
    run = rows[0].run
    entry = {"label_id": team.cat.id, "target": 0.9, "confident": True, "threshold": 0.5, "predictions": 30}
    entry["correct"] = 30
    run.kind = RunKind.EXTERNAL
    run.metrics = {"trust": {"labels": [dict(entry)]}, "boxes": {"trust": {"labels": [dict(entry)]}}}
    run.save(update_fields=["kind", "metrics"])
    assert _post(client, team.annotator, image.id, rows[0].id, "reject").status_code == 200
    run.refresh_from_db()
    (tags,), (boxes,) = run.metrics["trust"]["labels"], run.metrics["boxes"]["trust"]["labels"]
    assert tags["confident"] is True and "withdrawn" not in tags
    assert (boxes["confident"], boxes["withdrawn"]["measured"]) == (False, 31)
    assert not BoxSuggestion.objects.filter(label=team.cat, predicted=True).exists()


def test_a_rejection_is_counted_only_by_the_rules_whose_cutoff_it_is_above(team, suggested, django_assert_num_queries):
    """One read of the run per rejection; then each rule's count only where the rejected box's score
    reaches its cutoff (a box under it was never part of that estimate)."""
    from labeling.trust import box_decision_noted

    image, rows = suggested
    run = rows[0].run
    many = {"predictions": 1000, "correct": 1000}
    entry = {"label_id": team.cat.id, "target": 0.9, "confident": True, "threshold": 0.5, **many}
    run.metrics = {"trust": {"labels": [{**entry, "shown_from": 0.4, "shown_counts": many}]}}
    run.save(update_fields=["metrics"])
    with django_assert_num_queries(1):
        assert box_decision_noted(run_id=run.id, label_id=team.cat.id, score=0.2) is False  # under both
    with django_assert_num_queries(2):
        assert box_decision_noted(run_id=run.id, label_id=team.cat.id, score=0.45) is False  # the show rule's
    with django_assert_num_queries(3):
        assert box_decision_noted(run_id=run.id, label_id=team.cat.id, score=0.9) is False  # both rules'
