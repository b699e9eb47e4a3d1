"""The REST API's resources: owner / member / outsider on every endpoint, token auth, 409 on a
stale version, cursor pagination and filters, and query counts that do not grow with the page."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from annotator.models import Image, ImageTag
from labeling.models import ImageUncertainty, ProjectModelState, RunKind, RunStatus, Suggestion, SuggestionDecision
from labeling.models import TrainingRun
from tests.factories import add_images

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=5)]


def _as(client, user):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client


def _json(client, method, url, body=None):
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")


def _probe(team):
    run = TrainingRun.objects.create(project=team.project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=team.project, probe_run=run)
    for rank, image_id in enumerate(team.ids):
        Suggestion.objects.create(
            run=run, image_id=image_id, label=team.cat, probability=0.9 - rank * 0.1, predicted=rank < 3
        )
        ImageUncertainty.objects.create(run=run, image_id=image_id, score=[0.2, 0.9, 0.5, 0.9, 0.1][rank])
    return run


def _endpoints(team):
    """(method, url, body, expected status for owner, for annotator) of every endpoint; outsiders get 404."""
    p, image = team.project.id, team.ids[0]
    run = _probe(team)
    suggestion = Suggestion.objects.filter(image_id=image).first()
    other = Suggestion.objects.filter(image_id=team.ids[1]).first()
    return [
        ("get", reverse("api_project", args=[p]), None, 200, 200),
        ("get", reverse("api_project_labels", args=[p]), None, 200, 200),
        ("post", reverse("api_project_labels", args=[p]), {"name": "bird"}, 201, 403),
        ("get", reverse("api_project_images", args=[p]), None, 200, 200),
        ("get", reverse("api_image_annotations", args=[image]), None, 200, 200),
        ("put", reverse("api_image_annotations", args=[image]), {"version": 1, "boxes": [], "tags": []}, 200, 200),
        ("post", reverse("api_queue_next", args=[p]), {}, 200, 200),
        ("post", reverse("api_image_submit", args=[image]), {"version": 1}, 200, 200),
        ("post", reverse("api_image_skip", args=[image]), {"version": 1}, 200, 200),
        ("get", reverse("api_project_suggestions", args=[p]), None, 200, 200),
        (
            "post",
            reverse("api_suggestion_decide", args=[suggestion.image_id, suggestion.label_id, "reject"]),
            None,
            200,
            200,
        ),
        ("post", reverse("api_suggestion_decide", args=[other.image_id, other.label_id, "accept"]), None, 200, 200),
        ("get", reverse("api_project_runs", args=[p]), None, 200, 200),
        ("get", reverse("api_run_detail", args=[run.id]), None, 200, 200),
        ("post", reverse("api_run_cancel", args=[run.id]), None, 200, 403),
        ("get", reverse("api_project_export", args=[p]) + "?format=csv", None, 200, 403),  # admin-only (issue 14)
    ]


def test_every_endpoint_admits_members_by_role_and_hides_the_project_from_outsiders(client, team):
    for method, url, body, owner_status, member_status in _endpoints(team):
        for user, expected in ((team.owner, owner_status), (team.annotator, member_status), (team.outsider, 404)):
            response = _json(_as(client, user), method, url, body)
            if response.status_code == 409:  # a write by the previous user bumped the version
                body = {**body, "version": response.json()["current"]["image"]["version"]}
                response = _json(client, method, url, body)
            assert response.status_code == expected, (user.username, method, url, response.content)
        assert _json(_as(client, None), method, url, body).status_code == 401, url
    assert _as(client, None).get(reverse("api_projects")).status_code == 401  # outsiders see an empty list


def test_a_token_authenticates_scripts(client, team):
    call_command("drf_create_token", "annie", verbosity=0)
    key = Token.objects.get(user=team.annotator).key
    url = reverse("api_project_images", args=[team.project.id])
    client.logout()
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    response = client.get(url, HTTP_AUTHORIZATION="Token not-a-key")
    assert response.status_code == 401 and response.json()["error"]
    assert response["WWW-Authenticate"] == "Token"


def test_session_writes_need_the_csrf_token_and_token_writes_do_not(team):
    from django.test import Client

    url = reverse("api_image_annotations", args=[team.ids[0]])
    body = json.dumps({"version": 1, "boxes": [], "tags": []})
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(team.annotator)
    refused = browser.put(url, body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    browser.get(reverse("project_list"))  # sets the csrftoken cookie
    accepted = browser.put(
        url, body, content_type="application/json", HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value
    )
    assert accepted.status_code == 200
    key = Token.objects.create(user=team.annotator).key
    script = Client(enforce_csrf_checks=True)
    assert (
        script.put(
            url,
            json.dumps({"version": 2, "boxes": [], "tags": []}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {key}",
        ).status_code
        == 200
    )


def test_a_stale_version_gets_409_with_the_current_state(client, team):
    c = _as(client, team.annotator)
    url = reverse("api_image_annotations", args=[team.ids[0]])
    box = {"label": team.cat.id, "x": 1, "y": 2, "w": 30, "h": 40}
    first = _json(c, "put", url, {"version": 1, "boxes": [box], "tags": [team.dog.id]})
    assert first.status_code == 200 and first.json()["image"]["version"] == 2
    late = _json(c, "put", url, {"version": 1, "boxes": [], "tags": []})
    assert late.status_code == 409
    assert late.json()["current"]["boxes"][0]["x"] == 1.0 and late.json()["current"]["image"]["version"] == 2
    stale_submit = _json(c, "post", reverse("api_image_submit", args=[team.ids[0]]), {"version": 1})
    assert stale_submit.status_code == 409
    done = _json(c, "post", reverse("api_image_submit", args=[team.ids[0]]), {"version": 2})
    assert done.status_code == 200 and done.json()["image"]["status"] == "submitted"


def test_projects_are_created_with_their_labels_and_listed_to_members_only(client, team):
    c = _as(client, team.annotator)
    created = _json(c, "post", reverse("api_projects"), {"name": "Birds", "labels": ["robin", "crow"]})
    assert created.status_code == 201
    assert [label["name"] for label in created.json()["labels"]] == ["robin", "crow"]
    assert sorted(p["name"] for p in c.get(reverse("api_projects")).json()["results"]) == ["Birds", "Pets"]
    assert [p["name"] for p in _as(client, team.outsider).get(reverse("api_projects")).json()["results"]] == []
    bad = _json(_as(client, team.owner), "post", reverse("api_projects"), {"name": ""})
    assert bad.status_code == 400 and "name" in bad.json()["error"]
    duplicate = _json(client, "post", reverse("api_project_labels", args=[team.project.id]), {"name": "CAT"})
    assert duplicate.status_code == 400 and "already a label" in duplicate.json()["error"]


def test_the_image_list_pages_by_cursor_and_filters(client, team):
    c = _as(client, team.annotator)
    url = reverse("api_project_images", args=[team.project.id])
    seen, next_url = [], f"{url}?limit=2"
    while next_url:
        page = c.get(next_url).json()
        seen += [i["id"] for i in page["results"]]
        next_url = page["next"]
    assert seen == team.ids
    Image.objects.filter(pk=team.ids[1]).update(status="skipped")
    assert [i["id"] for i in c.get(url, {"status": "skipped"}).json()["results"]] == [team.ids[1]]
    ImageTag.objects.create(image_id=team.ids[3], label=team.dog, source="human")
    ImageTag.objects.create(image_id=team.ids[4], label=team.dog, source="model")
    assert [i["id"] for i in c.get(url, {"label": team.dog.id}).json()["results"]] == [team.ids[3]]
    _probe(team)
    assert [i["id"] for i in c.get(url, {"suggested": team.cat.id}).json()["results"]] == team.ids[:3]
    order, next_url = [], f"{url}?order=uncertain&limit=2"
    while next_url:
        page = c.get(next_url).json()
        order += [i["id"] for i in page["results"]]
        next_url = page["next"]
    ids = team.ids
    assert order == [ids[1], ids[3], ids[2], ids[0], ids[4]]  # ties (0.9) by id
    assert c.get(url, {"cursor": "garbage"}).status_code == 400
    assert c.get(url, {"status": "done"}).status_code == 400


def test_suggestions_are_listed_by_label_and_probability_and_decided_by_image_and_label(client, team):
    _probe(team)
    c = _as(client, team.annotator)
    url = reverse("api_project_suggestions", args=[team.project.id])
    rows = c.get(url, {"label": team.cat.id, "min_probability": "0.65"}).json()["results"]
    assert [r["probability"] for r in rows] == [0.9, 0.8, 0.7]
    accepted = c.post(reverse("api_suggestion_decide", args=[rows[0]["image"], rows[0]["label"], "accept"]))
    assert accepted.status_code == 200
    assert accepted.json()["tags"] == [{"label": team.cat.id, "source": "model"}]
    c.post(reverse("api_suggestion_decide", args=[rows[1]["image"], rows[1]["label"], "reject"]))
    assert dict(SuggestionDecision.objects.values_list("image_id", "decision")) == {
        rows[0]["image"]: "accepted",
        rows[1]["image"]: "rejected",
    }
    assert [r["decision"] for r in c.get(url).json()["results"][:3]] == ["accepted", "rejected", None]


def test_runs_start_with_a_config_and_refuse_a_bad_one(client, team, django_capture_on_commit_callbacks):
    from unittest import mock

    c = _as(client, team.owner)
    url = reverse("api_project_runs", args=[team.project.id])
    bad = _json(c, "post", url, {"kind": "pretrain", "config": {"epochs": 0}})
    assert bad.status_code == 400 and "epochs" in bad.json()["error"]
    with mock.patch("labeling.tasks.gpu_pretrain.delay"), django_capture_on_commit_callbacks(execute=True):
        started = _json(c, "post", url, {"kind": "pretrain", "config": {"epochs": 3}})
    assert started.status_code == 201 and started.json()["epochs"] == 3
    assert c.get(reverse("api_run_detail", args=[started.json()["id"]])).json()["status"] == "queued"
    cancelled = c.post(reverse("api_run_cancel", args=[started.json()["id"]]))
    assert cancelled.json()["status"] == "cancelled"


def test_list_endpoints_cost_the_same_few_queries_at_any_page_size(client, team):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _probe(team)
    add_images(team.project, 40)
    c = _as(client, team.annotator)
    p = team.project.id
    for url, params in (
        (reverse("api_project_images", args=[p]), {}),
        (reverse("api_project_images", args=[p]), {"order": "uncertain", "suggested": team.cat.id}),
        (reverse("api_project_images", args=[p]), {"label": team.cat.id, "status": "unlabeled"}),
        (reverse("api_project_suggestions", args=[p]), {}),
        (reverse("api_project_runs", args=[p]), {}),
        (reverse("api_projects"), {}),
        (reverse("api_project_labels", args=[p]), {}),
    ):
        counts = []
        for limit in (2, 45):
            with CaptureQueriesContext(connection) as queries:
                assert c.get(url, {**params, "limit": limit}).status_code == 200
            counts.append(len(queries))
        # session + user, project + membership, then at most three for the page itself
        assert counts[0] == counts[1] <= 7, (url, params, counts)


def test_the_schema_and_the_docs_page_describe_the_api(client, team):
    c = _as(client, team.annotator)
    schema = c.get(reverse("api_schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path in (
        "/api/projects/",
        "/api/projects/{project_id}/images/",
        "/api/images/{image_id}/annotations/",
        "/api/projects/{project_id}/export/",
        "/api/projects/{project_id}/import/",
        "/api/images/{image_id}/suggestions/{label_id}/{decision}/",
        "/api/runs/{run_id}/cancel/",
    ):
        assert path in paths, path
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    # /api/docs/ is Swagger UI, from the sidecar wheel's static files (no CDN), over this schema.
    swagger = c.get(reverse("api_docs"))
    assert swagger.status_code == 200 and b'<html lang="en">' in swagger.content
    assert b"drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in swagger.content
    assert reverse("api_redoc").encode() in swagger.content and b"https://" not in swagger.content
    script = c.get(reverse("api_docs") + "?script=")
    assert script.status_code == 200 and reverse("api_schema").encode() in script.content
    assert b'"deepLinking": false' in script.content  # no link inside the operations' buttons (axe)
    old = c.get(reverse("api_swagger"))
    assert old.status_code == 302 and old["Location"] == reverse("api_docs")
    # ReDoc, its bundle ours: the sidecar's with Redocly's CDN logo made an inline image.
    redoc = c.get(reverse("api_redoc"))
    assert redoc.status_code == 200 and reverse("api_redoc_bundle").encode() in redoc.content
    assert b"fonts.googleapis" not in redoc.content
    bundle = c.get(reverse("api_redoc_bundle"))
    assert bundle.status_code == 200 and bundle["Content-Type"].startswith("text/javascript")
    assert b"cdn.redoc.ly" not in bundle.content and b"data:image/svg+xml" in bundle.content
    browsable = c.get(reverse("api_project_labels", args=[team.project.id]), HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200 and b"cat" in browsable.content
