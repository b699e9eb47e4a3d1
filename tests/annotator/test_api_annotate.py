"""The annotate page's JSON endpoints (docs/annotate-api.md): owner, annotator, reviewer, outsider."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotator.models import Box, Image, ImageTag
from tests.factories import make_project, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=5)]


def _client(client, user):
    client.force_login(user)
    return client


def _put(client, image_id, body):
    return client.put(
        reverse("api_image_annotations", args=[image_id]), json.dumps(body), content_type="application/json"
    )


def _post(client, name, arg, body):
    return client.post(reverse(name, args=[arg]), json.dumps(body), content_type="application/json")


def test_a_save_replaces_boxes_and_tags_and_bumps_the_version(client, team):
    c = _client(client, team.annotator)
    image_id = team.ids[0]
    body = {
        "version": 1,
        "tags": [team.dog.id],
        "boxes": [
            {"label": team.cat.id, "x": 10, "y": 5.5, "w": 20, "h": 30},
            {"label": team.dog.id, "x": 90, "y": -10, "w": 50, "h": 40},
        ],
    }  # sticks out: clipped
    response = _put(c, image_id, body)
    assert response.status_code == 200, response.content
    state = response.json()
    assert state["image"]["version"] == 2 and state["image"]["status"] == "in_progress"
    assert [(b["label"], b["x"], b["y"], b["w"], b["h"]) for b in state["boxes"]] == [
        (team.cat.id, 10.0, 5.5, 20.0, 30.0),
        (team.dog.id, 90.0, 0.0, 10.0, 30.0),
    ]
    assert state["tags"] == [{"label": team.dog.id, "source": "human"}]
    assert c.get(reverse("api_image_annotations", args=[image_id])).json() == state
    second = _put(c, image_id, {"version": 2, "boxes": [], "tags": []}).json()
    assert second["boxes"] == [] and second["tags"] == [] and second["image"]["version"] == 3
    assert Box.objects.count() == 0 and ImageTag.objects.count() == 0


def test_a_stale_save_gets_409_with_the_current_state_and_changes_nothing(client, team):
    image_id = team.ids[0]
    first = _put(
        _client(client, team.annotator),
        image_id,
        {"version": 1, "boxes": [{"label": team.cat.id, "x": 1, "y": 1, "w": 5, "h": 5}]},
    )
    assert first.status_code == 200
    late = _put(_client(client, team.owner), image_id, {"version": 1, "boxes": [], "tags": []})
    assert late.status_code == 409
    answer = late.json()
    assert "Someone else changed this image" in answer["error"]
    assert answer["current"] == first.json()
    assert Box.objects.filter(image_id=image_id).count() == 1


@pytest.mark.parametrize(
    "body, message",
    [
        ({"version": 1, "boxes": [{"label": "cat", "x": 1, "y": 1, "w": 2, "h": 2}]}, "must be an integer"),
        ({"version": 1, "boxes": [{"label": 0, "x": 1, "y": 1, "w": 2, "h": 2}]}, "Unknown label id"),
        ({"version": 1, "boxes": [{"x": 1, "y": 1, "w": 2, "h": 2}]}, "“label” must be an integer"),
        ({"version": 1, "boxes": [{"label": None, "x": "1", "y": 1, "w": 2, "h": 2}]}, "must be an integer"),
        ({"version": 1, "boxes": "all of them"}, "must be a list"),
        ({"version": 1, "tags": [99999]}, "Unknown label id"),
        ({"version": "1"}, "“version” must be an integer"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_stores_nothing(client, team, body, message):
    response = _put(_client(client, team.annotator), team.ids[0], body)
    assert response.status_code == 400 and message in response.json()["error"]
    assert Image.objects.get(pk=team.ids[0]).version == 1 and Box.objects.count() == 0


@pytest.mark.parametrize(
    "coordinates, message",
    [
        ('{"label": %d, "x": NaN, "y": 1, "w": 2, "h": 2}', "finite"),
        ('{"label": %d, "x": 1, "y": 1, "w": Infinity, "h": 2}', "finite"),
        ('{"label": %d, "x": 500, "y": 1, "w": 2, "h": 2}', "outside"),
        ('{"label": %d, "x": 5, "y": 5, "w": 0, "h": 2}', "no area"),
        ('{"label": %d, "x": 5, "y": 5, "w": -4, "h": 2}', "no area"),
    ],
)
def test_boxes_that_are_not_finite_or_have_no_area_are_refused(client, team, coordinates, message):
    raw = '{"version": 1, "boxes": [%s]}' % (coordinates % team.cat.id)
    response = _client(client, team.annotator).put(
        reverse("api_image_annotations", args=[team.ids[0]]), raw, content_type="application/json"
    )
    assert response.status_code == 400 and message in response.json()["error"]
    assert Box.objects.count() == 0


def test_labels_of_another_project_are_refused(client, team):
    other = make_project(owner=make_user("x"), labels=("bird",), name="Other")
    bird = other.labels.get()
    response = _put(
        _client(client, team.annotator),
        team.ids[0],
        {"version": 1, "boxes": [{"label": bird.id, "x": 1, "y": 1, "w": 2, "h": 2}], "tags": [bird.id]},
    )
    assert response.status_code == 400 and "Unknown label id" in response.json()["error"]


def test_malformed_json_is_a_400(client, team):
    response = _client(client, team.annotator).put(
        reverse("api_image_annotations", args=[team.ids[0]]), "{not json", content_type="application/json"
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]


def test_access_owner_annotator_reviewer_outsider(client, team):
    image_id = team.ids[0]
    url = reverse("api_image_annotations", args=[image_id])
    for user in (team.owner, team.annotator, team.reviewer):
        assert _client(client, user).get(url).status_code == 200
    assert _client(client, team.outsider).get(url).status_code == 404
    assert _put(_client(client, team.reviewer), image_id, {"version": 1}).status_code == 403
    assert _put(_client(client, team.outsider), image_id, {"version": 1}).status_code == 404
    assert _post(_client(client, team.reviewer), "api_queue_next", team.project.id, {}).status_code == 403
    client.logout()
    assert client.get(url).status_code == 401


def test_submit_and_skip_finish_an_image_and_release_it(client, team):
    c = _client(client, team.annotator)
    first = _post(c, "api_queue_next", team.project.id, {}).json()["image"]
    assert first["image"]["status"] == "in_progress"
    done = _post(c, "api_image_submit", first["image"]["id"], {"version": first["image"]["version"]})
    assert done.status_code == 200 and done.json()["image"]["status"] == "submitted"
    image = Image.objects.get(pk=first["image"]["id"])
    assert image.submitted_by == team.annotator and image.submitted_at and image.locked_by is None
    stale = _post(c, "api_image_submit", image.id, {"version": first["image"]["version"]})
    assert stale.status_code == 409
    nxt = _post(c, "api_queue_next", team.project.id, {}).json()["image"]
    skipped = _post(c, "api_image_skip", nxt["image"]["id"], {"version": nxt["image"]["version"]}).json()
    assert skipped["image"]["status"] == "skipped"


def test_an_id_no_column_can_hold_is_a_400_with_a_message(client, team):
    annie = _client(client, team.annotator)
    for body in ({"exclude": [2**64]}, {"release": [-(2**63) - 1]}):
        response = _post(annie, "api_queue_next", team.project.id, body)
        assert response.status_code == 400 and "out of range" in response.json()["error"]
    assert _post(annie, "api_queue_next", team.project.id, {"exclude": [2**63 - 1]}).status_code == 200


def test_the_queue_hands_each_image_to_one_person_and_resumes_yours(client, team):
    ids, project = team.ids, team.project
    annie = _client(client, team.annotator)
    assert _post(annie, "api_queue_next", project.id, {}).json()["image"]["image"]["id"] == ids[0]
    # Asking again (a reload) resumes the image you hold.
    assert _post(annie, "api_queue_next", project.id, {}).json()["image"]["image"]["id"] == ids[0]
    # Prefetch: excluding the current one gives the next, also held for you.
    assert _post(annie, "api_queue_next", project.id, {"exclude": [ids[0]]}).json()["image"]["image"]["id"] == ids[1]
    owner = _client(client, team.owner)
    assert _post(owner, "api_queue_next", project.id, {}).json()["image"]["image"]["id"] == ids[2]
    # An expired hold frees the image for others.
    Image.objects.filter(pk=ids[0]).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert _post(owner, "api_queue_next", project.id, {"exclude": [ids[2]]}).json()["image"]["image"]["id"] == ids[0]
    assert Image.objects.get(pk=ids[0]).locked_by == team.owner


def test_the_queue_ends_with_null_and_random_order_stays_within_the_free_images(client, team):
    project, ids = team.project, team.ids
    Image.objects.filter(pk__in=ids[:3]).update(status="submitted", submitted_at=timezone.now())
    c = _client(client, team.annotator)
    seen = set()
    for _ in range(2):
        state = _post(c, "api_queue_next", project.id, {"order": "random", "exclude": sorted(seen)}).json()["image"]
        seen.add(state["image"]["id"])
    assert seen == set(ids[3:])
    assert _post(c, "api_queue_next", project.id, {"exclude": sorted(seen)}).json() == {"image": None}
    bad = _post(c, "api_queue_next", project.id, {"order": "alphabetical"})
    assert bad.status_code == 400 and "Unknown queue order" in bad.json()["error"]


def test_the_annotate_page_opens_the_next_image_or_the_one_asked_for(client, team):
    c = _client(client, team.annotator)
    page = c.get(reverse("annotate", args=[team.project.id]))
    assert page.status_code == 200
    assert page.context["initial"]["image"]["id"] == team.ids[0]
    config = page.context["config"]
    assert [label["name"] for label in config["labels"]] == ["cat", "dog"]
    assert b'id="annotate-config"' in page.content and b'id="annotate-initial"' in page.content
    page = c.get(reverse("annotate", args=[team.project.id]), {"image": team.ids[3]})
    assert page.context["initial"]["image"]["id"] == team.ids[3]
    assert _client(client, team.reviewer).get(reverse("annotate", args=[team.project.id])).status_code == 403


def test_released_holds_go_back_to_the_queue(client, team):
    project, ids = team.project, team.ids
    annie = _client(client, team.annotator)
    held = _post(annie, "api_queue_next", project.id, {}).json()["image"]["image"]["id"]
    got = _post(annie, "api_queue_next", project.id, {"exclude": [held], "release": [held]}).json()["image"]
    assert got["image"]["id"] == ids[1]
    released = Image.objects.get(pk=held)
    assert (released.status, released.locked_by) == ("unlabeled", None)
    owner = _client(client, team.owner)
    assert _post(owner, "api_queue_next", project.id, {}).json()["image"]["image"]["id"] == held
    bad = _post(owner, "api_queue_next", project.id, {"release": "all"})
    assert bad.status_code == 400 and "“release” must be a list" in bad.json()["error"]


def test_a_kept_tag_keeps_its_model_source_through_a_save(client, team):
    image = Image.objects.get(pk=team.ids[0])
    ImageTag.objects.create(image=image, label=team.dog, source="model")
    c = _client(client, team.annotator)
    state = _put(c, image.id, {"version": 1, "tags": [team.dog.id, team.cat.id], "boxes": []}).json()
    assert sorted((t["label"], t["source"]) for t in state["tags"]) == sorted(
        [(team.dog.id, "model"), (team.cat.id, "human")]
    )
