"""POST /api/projects/{id}/bulk-tags/: one tag on a selection of images, versioned per image, undone
as one step (annotator/services/bulk_tags.py)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotator.models import Box, Image, ImageTag
from annotator.services.annotations import annotation_save

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=6)]


def _post(client, team, body):
    url = reverse("api_project_bulk_tags", args=[team.project.id])
    return client.post(url, json.dumps(body), content_type="application/json")


def _tags(team, label):
    return sorted(ImageTag.objects.filter(label=label, image__project=team.project).values_list("image_id", flat=True))


def _versions(ids):
    return dict(Image.objects.filter(pk__in=ids).values_list("id", "version"))


def test_an_annotator_tags_a_selection_and_undoes_it_in_one_step(client, team):
    client.force_login(team.annotator)
    ImageTag.objects.create(image_id=team.ids[0], label=team.cat, source="human")
    before = _versions(team.ids)
    body = _post(client, team, {"images": team.ids[:4], "label": team.cat.id, "action": "add"}).json()
    assert body["changed"] == 3 and body["unchanged"] == 1 and body["conflicts"] == [] and body["undo"]
    assert _tags(team, team.cat) == team.ids[:4]
    assert ImageTag.objects.filter(image_id=team.ids[1], label=team.cat).get().source == "human_bulk"
    after = _versions(team.ids)
    assert [after[i] - before[i] for i in team.ids] == [0, 1, 1, 1, 0, 0]  # only what changed moves

    undone = _post(client, team, {"undo": body["undo"]})
    assert undone.status_code == 200 and undone.json()["changed"] == 3
    assert _tags(team, team.cat) == [team.ids[0]]  # the tag set by hand before stays


def test_removing_restores_each_tag_as_it_was_on_undo(client, team):
    client.force_login(team.owner)
    annotation_save(
        image=Image.objects.get(pk=team.ids[0]), user=team.annotator, version=1, boxes=[], tag_label_ids=[team.dog.id]
    )
    ImageTag.objects.create(image_id=team.ids[1], label=team.dog, source="model")
    body = _post(client, team, {"images": team.ids[:3], "label": team.dog.id, "action": "remove"}).json()
    assert body["changed"] == 2 and body["unchanged"] == 1 and _tags(team, team.dog) == []
    assert Image.objects.get(pk=team.ids[0]).human_tag_count == 0
    _post(client, team, {"undo": body["undo"]})
    restored = dict(ImageTag.objects.filter(label=team.dog).values_list("image_id", "source"))
    assert restored == {team.ids[0]: "human", team.ids[1]: "model"}
    assert ImageTag.objects.get(image_id=team.ids[0], label=team.dog).author == team.annotator
    assert Image.objects.get(pk=team.ids[0]).human_tag_count == 1


def test_an_image_edited_since_is_a_conflict_and_is_left_alone(client, team):
    client.force_login(team.annotator)
    seen = _versions(team.ids[:3])
    annotation_save(image=Image.objects.get(pk=team.ids[1]), user=team.owner, version=1, boxes=[], tag_label_ids=[])
    body = _post(client, team, {"images": team.ids[:3], "label": team.cat.id, "action": "add", "versions": seen}).json()
    assert body["changed"] == 2
    assert body["conflicts"] == [{"id": team.ids[1], "version": 2}]
    assert _tags(team, team.cat) == [team.ids[0], team.ids[2]]
    # Every image edited since: nothing written, 409.
    stale = _post(
        client,
        team,
        {"images": [team.ids[1]], "label": team.cat.id, "action": "add", "versions": {str(team.ids[1]): 1}},
    )
    assert stale.status_code == 409 and stale.json()["conflicts"][0]["id"] == team.ids[1]


def test_undo_leaves_an_image_someone_edited_after_the_bulk_write(client, team):
    client.force_login(team.annotator)
    body = _post(client, team, {"images": team.ids[:2], "label": team.cat.id, "action": "add"}).json()
    image = Image.objects.get(pk=team.ids[0])
    annotation_save(
        image=image, user=team.owner, version=image.version, boxes=[], tag_label_ids=[team.cat.id, team.dog.id]
    )
    undone = _post(client, team, {"undo": body["undo"]}).json()
    assert undone["changed"] == 1 and [c["id"] for c in undone["conflicts"]] == [team.ids[0]]
    assert _tags(team, team.cat) == [team.ids[0]]  # their edit kept it


def test_removing_a_tag_reports_a_box_of_the_label_that_remains(client, team):
    client.force_login(team.annotator)
    ImageTag.objects.create(image_id=team.ids[0], label=team.cat, source="human")
    Box.objects.create(image_id=team.ids[0], label=team.cat, x=1, y=1, w=5, h=5)
    body = _post(client, team, {"images": [team.ids[0]], "label": team.cat.id, "action": "remove"}).json()
    assert body["still_present"] == [team.ids[0]]


def test_roles_and_bad_requests(client, team):
    body = {"images": team.ids[:2], "label": team.cat.id, "action": "add"}
    assert _post(client, team, body).status_code == 401
    client.force_login(team.reviewer)
    assert _post(client, team, body).status_code == 403
    client.force_login(team.outsider)
    assert _post(client, team, body).status_code == 404
    client.force_login(team.annotator)
    assert _post(client, team, {**body, "action": "toggle"}).status_code == 400
    assert _post(client, team, {**body, "images": []}).status_code == 400
    assert _post(client, team, {**body, "label": 999}).status_code == 400
    assert _post(client, team, {"undo": "forged"}).status_code == 400
    other = _post(client, team, {**body, "images": [team.ids[0], 10_000]}).json()
    assert other["missing"] == [10_000] and other["changed"] == 1
    assert _tags(team, team.cat) == [team.ids[0]]


def test_the_image_list_counts_a_bulk_tag_as_a_persons(client, team):
    client.force_login(team.annotator)
    _post(client, team, {"images": team.ids[:2], "label": team.dog.id, "action": "add"})
    listed = client.get(reverse("api_project_images", args=[team.project.id]), {"label": team.dog.id}).json()
    assert [r["id"] for r in listed["results"]] == team.ids[:2]
