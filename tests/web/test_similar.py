"""GET /api/images/{id}/similar/: more like this from the current backbone's embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from annotator.models import Image, ImageStatus, ImageTag
from tests.factories import embeddings

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=6)]


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"


def _features(n):
    # Image i points at angle i * 20 degrees: image 0's neighbours are 1, 2, 3, ... in that order.
    angles = np.deg2rad(np.arange(n) * 20.0)
    return np.stack([np.cos(angles), np.sin(angles), np.zeros(n)], axis=1)


def _similar(client, image_id, **params):
    return client.get(reverse("api_image_similar", args=[image_id]), params)


def test_it_lists_the_nearest_images_most_similar_first_without_the_image_itself(client, team):
    embeddings(team.project, team.ids, _features(6), block_size=4)  # two blocks
    for user in (team.owner, team.annotator, team.reviewer):
        client.force_login(user)
        response = _similar(client, team.ids[0], k=3)
        assert response.status_code == 200, response.content
        body = response.json()
        assert [r["id"] for r in body["results"]] == team.ids[1:4]
        similarities = [r["similarity"] for r in body["results"]]
        assert similarities == pytest.approx(np.cos(np.deg2rad([20, 40, 60])), abs=2e-3)
        assert body["note"] is None and body["results"][0]["thumbnail"].endswith(f"/images/{team.ids[1]}/thumb")


def test_an_outsider_gets_404_and_a_visitor_401(client, team):
    embeddings(team.project, team.ids, _features(6))
    assert _similar(client, team.ids[0]).status_code == 401
    client.force_login(team.outsider)
    assert _similar(client, team.ids[0]).status_code == 404


def test_it_filters_by_status_and_human_label(client, team):
    embeddings(team.project, team.ids, _features(6))
    Image.objects.filter(pk__in=team.ids[3:]).update(status=ImageStatus.SUBMITTED, submitted_at=timezone.now())
    ImageTag.objects.create(image_id=team.ids[5], label=team.dog, source="human")
    client.force_login(team.owner)
    submitted = _similar(client, team.ids[0], k=2, status="submitted").json()["results"]
    assert [r["id"] for r in submitted] == team.ids[3:5]
    dogs = _similar(client, team.ids[0], label=team.dog.id).json()["results"]
    assert [r["id"] for r in dogs] == [team.ids[5]]


def test_it_says_why_there_is_nothing_to_compare(client, team):
    client.force_login(team.owner)
    body = _similar(client, team.ids[0]).json()
    assert body["results"] == [] and "pretraining" in body["note"]
    embeddings(team.project, team.ids[:5], _features(5))  # the last image came after the pretraining
    body = _similar(client, team.ids[5]).json()
    assert body["results"] == [] and "no embedding yet" in body["note"]


def test_it_refuses_a_k_out_of_range_or_an_unknown_status(client, team):
    embeddings(team.project, team.ids, _features(6))
    client.force_login(team.owner)
    assert _similar(client, team.ids[0], k=0).status_code == 400
    assert _similar(client, team.ids[0], k=201).status_code == 400
    assert _similar(client, team.ids[0], status="nope").status_code == 400


def test_a_new_pretraining_replaces_the_neighbours(client, team):
    embeddings(team.project, team.ids, _features(6))
    client.force_login(team.owner)
    assert _similar(client, team.ids[0], k=1).json()["results"][0]["id"] == team.ids[1]
    flipped = _features(6)
    flipped[5] = flipped[0] * 0.5  # image 5 now points where image 0 does
    run = embeddings(team.project, team.ids, flipped)
    body = _similar(client, team.ids[0], k=1).json()
    assert body["run"] == run.id and body["results"][0]["id"] == team.ids[5]
    assert body["results"][0]["similarity"] == pytest.approx(1.0, abs=1e-3)


def test_the_grid_shows_more_like_this_with_scores_in_order(client, team):
    embeddings(team.project, team.ids, _features(6))
    grid = reverse("image_grid", args=[team.project.id])
    client.force_login(team.reviewer)
    html = client.get(grid, {"similar": team.ids[0]}).content.decode()
    shown = [int(part.split('"')[0]) for part in html.split('data-image-id="')[1:]]
    assert shown == team.ids[1:]  # 20° apart, then 40°...
    assert "More like" in html and ">0.939<" in html  # cos 20° = 0.9397, in float16
    assert f"?similar={team.ids[3]}" in client.get(grid).content.decode()  # each thumbnail links to its own
    client.force_login(team.outsider)
    assert client.get(grid, {"similar": team.ids[2]}).status_code == 404


def test_the_grid_refuses_an_image_of_another_project(client, team):
    from tests.factories import add_images, make_project

    other = add_images(make_project(owner=team.owner, name="Other"), 1)[0]
    client.force_login(team.owner)
    assert client.get(reverse("image_grid", args=[team.project.id]), {"similar": other}).status_code == 404
