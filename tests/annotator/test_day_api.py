"""Issue 19's two small endpoints: the queue release that navigator.sendBeacon sends (a form with
the CSRF token in it), and taking back a decision on a suggestion."""

import json

import pytest
from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from django.test import Client
from django.urls import reverse

from annotator.services.queue import queue_next
from annotator.models import Image, ImageStatus, ImageTag, Role
from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, SuggestionDecision, TrainingRun
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def test_a_beacon_form_with_the_token_releases_only_the_senders_holds():
    owner, annie = make_user("owner"), make_user("annie")
    project = make_project(owner=owner)
    add_member(project, annie, Role.ANNOTATOR)
    add_images(project, 2)
    mine, theirs = queue_next(project=project, user=owner), queue_next(project=project, user=annie)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    url = reverse("api_queue_release", args=[project.id])
    assert client.post(url, {"images": f"{mine.id},{theirs.id}"}).status_code == 403  # no token: refused
    response = client.post(
        url, {"images": f"{mine.id},{theirs.id}", "csrfmiddlewaretoken": _mask_cipher_secret(secret)}
    )
    assert response.status_code == 200 and response.json() == {"released": 1}
    assert Image.objects.get(pk=mine.id).status == ImageStatus.UNLABELED
    assert Image.objects.get(pk=theirs.id).locked_by == annie
    bad = client.post(url, {"images": "1,x", "csrfmiddlewaretoken": _mask_cipher_secret(secret)})
    assert bad.status_code == 400 and "separated by commas" in bad.json()["error"]


def test_undo_takes_back_an_accept_with_its_tag_and_says_when_there_is_nothing(client):
    owner = make_user("owner")
    project = make_project(owner=owner)
    image_id = add_images(project, 1)[0]
    cat = project.labels.get(name="cat")
    pretrain = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    probe = TrainingRun.objects.create(
        project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED, backbone_run=pretrain
    )
    ProjectModelState.objects.create(project=project, pretrain_run=pretrain, probe_run=probe)
    Suggestion.objects.create(run=probe, image_id=image_id, label=cat, probability=0.9, predicted=True)
    client.force_login(owner)
    url = lambda decision: reverse("api_suggestion_decide", args=[image_id, cat.id, decision])  # noqa: E731
    assert client.post(url("accept"), "{}", content_type="application/json").status_code == 200
    assert ImageTag.objects.filter(image_id=image_id, source="model").count() == 1
    version = Image.objects.get(pk=image_id).version
    state = client.post(url("undo"), "{}", content_type="application/json").json()
    assert state["tags"] == [] and state["image"]["version"] == version + 1
    assert not SuggestionDecision.objects.exists()
    again = client.post(url("undo"), json.dumps({}), content_type="application/json")
    assert again.status_code == 400 and "Nobody has decided" in again.json()["error"]
