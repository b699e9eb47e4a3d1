"""POST /api/projects/{id}/bulk-suggestions/: one label's suggestions accepted or rejected on a
selection of images, versioned per image, undone as one step (labeling/bulk_decisions.py)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotator.models import Image, ImageTag
from annotator.services.annotations import annotation_save
from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, SuggestionDecision, TrainingRun

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=6)]


@pytest.fixture
def run(team):
    """A current probe suggesting cat on the first five images (not the sixth)."""
    run = TrainingRun.objects.create(project=team.project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=team.project, probe_run=run)
    for rank, image_id in enumerate(team.ids[:5]):
        Suggestion.objects.create(
            run=run, image_id=image_id, label=team.cat, probability=0.9 - rank / 10, predicted=True
        )
    return run


def _post(client, team, body):
    url = reverse("api_project_bulk_suggestions", args=[team.project.id])
    return client.post(url, json.dumps(body), content_type="application/json")


def _tags(team):
    return dict(ImageTag.objects.filter(label=team.cat, image__project=team.project).values_list("image_id", "source"))


def _decisions(team):
    return dict(SuggestionDecision.objects.filter(label=team.cat).values_list("image_id", "decision"))


def _versions(ids):
    return dict(Image.objects.filter(pk__in=ids).values_list("id", "version"))


def test_accepting_a_selection_tags_it_as_the_models_and_undo_takes_it_back(client, team, run):
    a, b, c, d, e, f = team.ids
    client.force_login(team.annotator)
    ImageTag.objects.create(image_id=a, label=team.cat, source="human", author=team.owner)
    before = _versions(team.ids)
    body = _post(client, team, {"images": [a, b, c, f], "label": team.cat.id, "decision": "accept"}).json()
    assert body["changed"] == 3 and body["no_suggestion"] == [f] and body["conflicts"] == []
    assert _tags(team) == {a: "human", b: "model", c: "model"}  # the person's tag stays theirs
    assert _decisions(team) == {a: "accepted", b: "accepted", c: "accepted"}
    assert SuggestionDecision.objects.get(image_id=b).probability == pytest.approx(0.8)
    after = _versions(team.ids)
    assert [after[i] - before[i] for i in team.ids] == [1, 1, 1, 0, 0, 0]

    undone = _post(client, team, {"undo": body["undo"]})
    assert undone.status_code == 200 and undone.json()["changed"] == 3
    assert _tags(team) == {a: "human"} and _decisions(team) == {}


def test_rejecting_records_the_decisions_and_undo_restores_earlier_ones(client, team, run):
    a, b, c, *_ = team.ids
    client.force_login(team.owner)
    SuggestionDecision.objects.create(
        image_id=a, label=team.cat, run=run, probability=0.9, decision="accepted", user=team.annotator
    )
    body = _post(client, team, {"images": [a, b, c], "label": team.cat.id, "decision": "reject"}).json()
    assert body["changed"] == 3 and _tags(team) == {}  # a reject adds and removes no tag
    assert _decisions(team) == {a: "rejected", b: "rejected", c: "rejected"}
    again = _post(client, team, {"images": [a], "label": team.cat.id, "decision": "reject"}).json()
    assert again["changed"] == 0 and again["unchanged"] == 1
    _post(client, team, {"undo": body["undo"]})
    assert _decisions(team) == {a: "accepted"}
    assert SuggestionDecision.objects.get(image_id=a).user == team.annotator


def test_an_image_edited_since_is_a_conflict_and_is_left_alone(client, team, run):
    a, b, *_ = team.ids
    client.force_login(team.annotator)
    seen = _versions([a, b])
    annotation_save(image=Image.objects.get(pk=b), user=team.owner, version=1, boxes=[], tag_label_ids=[team.dog.id])
    body = _post(client, team, {"images": [a, b], "label": team.cat.id, "decision": "accept", "versions": seen}).json()
    assert body["changed"] == 1 and body["conflicts"] == [{"id": b, "version": 2}]
    assert _tags(team) == {a: "model"} and _decisions(team) == {a: "accepted"}
    stale = _post(client, team, {"images": [b], "label": team.cat.id, "decision": "accept", "versions": {str(b): 1}})
    assert stale.status_code == 409


def test_undo_leaves_an_image_someone_edited_after_the_bulk_write(client, team, run):
    a, b, *_ = team.ids
    client.force_login(team.annotator)
    body = _post(client, team, {"images": [a, b], "label": team.cat.id, "decision": "accept"}).json()
    image = Image.objects.get(pk=b)
    annotation_save(image=image, user=team.owner, version=image.version, boxes=[], tag_label_ids=[team.cat.id])
    undone = _post(client, team, {"undo": body["undo"]}).json()
    assert undone["changed"] == 1 and [c["id"] for c in undone["conflicts"]] == [b]
    assert set(_tags(team)) == {b} and _decisions(team) == {b: "accepted"}


def test_bad_requests_say_what_to_fix(client, team, run):
    client.force_login(team.annotator)
    assert _post(client, team, {"images": [team.ids[0]], "label": team.cat.id, "decision": "maybe"}).status_code == 400
    assert _post(client, team, {"images": [], "label": team.cat.id, "decision": "accept"}).status_code == 400
    assert _post(client, team, {"images": [team.ids[0]], "label": 999999, "decision": "accept"}).status_code == 400
    assert _post(client, team, {"undo": "forged"}).status_code == 400
    client.force_login(team.reviewer)
    assert _post(client, team, {"images": [team.ids[0]], "label": team.cat.id, "decision": "accept"}).status_code == 403
    client.force_login(team.outsider)
    assert _post(client, team, {"images": [team.ids[0]], "label": team.cat.id, "decision": "accept"}).status_code == 404
