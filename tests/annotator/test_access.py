"""Every page and JSON endpoint, table-driven: the owner (admin) gets through, a member whose role is
too small gets 403, an outsider gets 404 (a project's existence is private), and an anonymous
visitor is sent to log in (pages) or gets 401 (JSON)."""

import json
from dataclasses import dataclass

import pytest
from django.urls import reverse
from django.utils import timezone

from annotator.models import BucketImport, BucketSource, Image, ImageStatus, Membership, Role
from labeling.models import AutoTag, RunKind, TrainingRun
from labeling.paths import RUN_FILES, run_dir
from twinlabel.webhooks.models import Webhook
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = pytest.mark.django_db

ANY = (Role.ADMIN, Role.ANNOTATOR, Role.REVIEWER)
ANNOTATE = (Role.ADMIN, Role.ANNOTATOR)
REVIEW = (Role.ADMIN, Role.REVIEWER)
ADMIN = (Role.ADMIN,)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    roles: tuple[str, ...]  # who may
    ok: tuple[int, ...] = (200,)  # what they get (400: access passed, the body was judged)
    json: bool = False
    body: object = None


ENDPOINTS = [
    Endpoint("project_detail", "get", ANY),
    Endpoint("image_grid", "get", ANY),
    Endpoint("image_file", "get", ANY),
    Endpoint("image_thumbnail", "get", ANY),
    Endpoint("annotate", "get", ANNOTATE),
    Endpoint("review", "get", REVIEW),
    Endpoint("api_project_images", "post", ADMIN, ok=(400,), json=True),  # no files: "Choose one or more image files"
    Endpoint("label_add", "post", ADMIN, ok=(302,), body={"name": "bird"}),
    Endpoint("label_edit", "post", ADMIN, ok=(302,), body={"name": "kitty", "color": "#123456", "hotkey": "k"}),
    Endpoint("project_settings", "post", ADMIN, ok=(302,), body={"overlap_percent": "10"}),
    Endpoint("project_delete", "get", ADMIN),
    # A wrong name: 400 says to type it (the deletion itself is tested in services/test_deletion.py).
    Endpoint("project_delete", "post", ADMIN, ok=(400,), body={"confirm": "not the name"}),
    Endpoint("api_project", "delete", ADMIN, ok=(400,), json=True),
    Endpoint("members", "get", ADMIN),
    Endpoint("members", "post", ADMIN, ok=(302,), body={"username": "newbie", "role": "annotator"}),
    Endpoint("member_edit", "post", ADMIN, ok=(302,), body={"role": "reviewer"}),
    Endpoint("api_image_annotations", "get", ANY, json=True),
    Endpoint("api_image_annotations", "put", ANNOTATE, json=True, body={"version": 1, "boxes": [], "tags": []}),
    Endpoint("api_image_submit", "post", ANNOTATE, json=True, body={"version": 1}),
    Endpoint("api_image_skip", "post", ANNOTATE, json=True, body={"version": 1}),
    Endpoint("api_queue_next", "post", ANNOTATE, json=True, body={}),
    Endpoint("api_queue_release", "post", ANNOTATE, json=True, body={"images": []}),
    Endpoint("api_image_review", "post", REVIEW, json=True, body={"decision": "accept", "version": 1}),
    Endpoint("api_image_similar", "get", ANY, json=True),
    Endpoint("api_project_duplicates", "get", ANY, json=True),
    # An unknown label: 400, after access was granted.
    Endpoint(
        "api_project_bulk_tags", "post", ANNOTATE, ok=(400,), json=True, body={"images": [1], "action": "add"}
    ),  # no pretraining here: 200 with a note
    Endpoint(
        "api_project_bulk_suggestions",
        "post",
        ANNOTATE,
        ok=(400,),
        json=True,
        body={"images": [1], "decision": "accept"},
    ),  # no label: 400, after access was granted
    Endpoint("api_project_runs", "get", ANY, json=True),
    Endpoint(
        "api_project_runs", "post", ADMIN, ok=(201,), json=True, body={"kind": "pretrain", "config": {"epochs": 1}}
    ),
    Endpoint("api_run_detail", "get", ANY, json=True),
    Endpoint("api_project_webhooks", "get", ADMIN, json=True),
    # An address the server may not call (loopback): 400 says so, after access was granted.
    Endpoint(
        "api_project_webhooks",
        "post",
        ADMIN,
        ok=(400,),
        json=True,
        body={"url": "http://127.0.0.1:9/", "events": ["run.finished"]},
    ),
    Endpoint("api_webhook_test", "post", ADMIN, ok=(202,), json=True, body={}),
    Endpoint("api_webhook_deliveries", "get", ADMIN, json=True),
    Endpoint("api_webhook", "delete", ADMIN, ok=(204,), json=True),
    # An empty body: 400 says a predictions file needs "predictions", after access was granted.
    Endpoint("api_project_predictions", "post", ADMIN, ok=(400,), json=True, body={}),
    # An empty body: 400 says the bucket's URL is needed, after access was granted.
    Endpoint("api_project_bucket_imports", "post", ADMIN, ok=(400,), json=True, body={}),
    Endpoint("api_project_bucket_imports", "get", ADMIN, json=True),
    Endpoint("api_bucket_import", "get", ADMIN, json=True),
    Endpoint("api_run_cancel", "post", ADMIN, json=True, body={}),
    Endpoint("api_run_retry", "post", ADMIN, ok=(201,), json=True, body={}),
    Endpoint("run_file", "get", ADMIN),
    Endpoint("project_dashboard", "get", ADMIN),
    Endpoint("api_project_dashboard", "get", ADMIN, json=True),
    Endpoint("api_embedding_map", "get", ADMIN, json=True),
    # No current suggestion in this small project: 400 says so, after access was granted.
    Endpoint("api_suggestion_decide", "post", ANNOTATE, ok=(400,), json=True, body={}),
    Endpoint("api_suggestions_accept_all", "post", ANNOTATE, json=True, body={}),
    Endpoint("api_suggestion_settings", "get", ANY, json=True),
    # No detector run in this small project: 400 says there is no such box suggestion, after access.
    Endpoint("api_box_suggestion_decide", "post", ANNOTATE, ok=(400,), json=True, body={}),
    Endpoint("api_box_suggestions_accept_all", "post", ANNOTATE, json=True, body={}),
    Endpoint("api_suggestion_settings", "patch", ADMIN, json=True, body={"precision_target": 0.95}),
    Endpoint("audit", "get", REVIEW),
    Endpoint("api_audit_next", "get", REVIEW, json=True),
    # A verdict that is neither: 400 says so, after access was granted (audits: tests/labeling/test_auto_accept.py).
    Endpoint("api_audit_decide", "post", REVIEW, ok=(400,), json=True, body={"verdict": "maybe"}),
]


@pytest.fixture
def world(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    owner = make_user("owner")
    project = make_project(owner=owner)
    users = {
        "owner": owner,
        Role.ANNOTATOR: make_user("annie"),
        Role.REVIEWER: make_user("rev"),
        "outsider": make_user("out"),
    }
    add_member(project, users[Role.ANNOTATOR], Role.ANNOTATOR)
    add_member(project, users[Role.REVIEWER], Role.REVIEWER)
    make_user("newbie")
    unlabeled, submitted = add_images(project, 2)
    Image.objects.filter(pk=submitted).update(
        status=ImageStatus.SUBMITTED, submitted_at=timezone.now(), submitted_by=users[Role.ANNOTATOR]
    )
    # A failed pretraining: it can be retried, and does not block the one a test may start.
    run = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config={"epochs": 1}, status="failed")
    events = run_dir(run.id) / RUN_FILES["tensorboard"] / "events.out.tfevents.1.test"
    events.parent.mkdir(parents=True)
    events.write_bytes(b"event")
    cat = project.labels.order_by("id").first()
    hook = Webhook.objects.create(
        project=project, url="http://hooks.example/", events=["run.finished"], secret="s" * 20
    )
    member = Membership.objects.get(project=project, user=users[Role.REVIEWER])
    bucket_job = BucketImport.objects.create(source=BucketSource.objects.create(project=project, bucket="pics"))
    auto_tag = AutoTag.objects.create(image_id=unlabeled, label=cat, probability=0.99, audit_result="pending")
    args = {
        "project_detail": [project.id],
        "image_grid": [project.id],
        "annotate": [project.id],
        "review": [project.id],
        "project_settings": [project.id],
        "project_delete": [project.id],
        "api_project": [project.id],
        "api_project_images": [project.id],
        "label_add": [project.id],
        "label_edit": [project.id, cat.id],
        "members": [project.id],
        "member_edit": [project.id, member.id],
        "image_file": [unlabeled],
        "image_thumbnail": [unlabeled],
        "api_image_annotations": [unlabeled],
        "api_image_submit": [unlabeled],
        "api_image_skip": [unlabeled],
        "api_queue_next": [project.id],
        "api_queue_release": [project.id],
        "api_image_review": [submitted],
        "api_image_similar": [unlabeled],
        "api_project_bulk_tags": [project.id],
        "api_project_bulk_suggestions": [project.id],
        "api_project_duplicates": [project.id],
        "api_project_runs": [project.id],
        "api_run_detail": [run.id],
        "api_project_predictions": [project.id],
        "api_project_bucket_imports": [project.id],
        "api_bucket_import": [bucket_job.id],
        "api_project_webhooks": [project.id],
        "api_webhook": [hook.id],
        "api_webhook_test": [hook.id],
        "api_webhook_deliveries": [hook.id],
        "api_run_cancel": [run.id],
        "api_run_retry": [run.id],
        "run_file": [run.id, f"tensorboard/{events.name}"],
        "project_dashboard": [project.id],
        "api_project_dashboard": [project.id],
        "api_embedding_map": [project.id],
        "api_suggestion_decide": [unlabeled, cat.id, "accept"],
        "api_suggestions_accept_all": [unlabeled],
        "api_box_suggestion_decide": [unlabeled, 1, "accept"],
        "api_box_suggestions_accept_all": [unlabeled],
        "api_suggestion_settings": [project.id],
        "audit": [project.id],
        "api_audit_next": [project.id],
        "api_audit_decide": [auto_tag.id],
    }
    return users, args


def _call(client, endpoint: Endpoint, args):
    url = reverse(endpoint.name, args=args)
    if endpoint.json and endpoint.method != "get":
        return getattr(client, endpoint.method)(url, json.dumps(endpoint.body or {}), content_type="application/json")
    if endpoint.method == "get":
        return client.get(url)
    return client.post(url, endpoint.body or {})


def _id(endpoint: Endpoint) -> str:
    return f"{endpoint.method.upper()} {endpoint.name}"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_the_owner_gets_through(client, world, endpoint):
    users, args = world
    client.force_login(users["owner"])
    response = _call(client, endpoint, args[endpoint.name])
    assert response.status_code in endpoint.ok, response.content[:300]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_each_member_role_gets_through_or_403(client, world, endpoint):
    users, args = world
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        client.force_login(users[role])
        response = _call(client, endpoint, args[endpoint.name])
        if role in endpoint.roles:
            assert response.status_code in endpoint.ok, (role, response.content[:300])
        else:
            assert response.status_code == 403, (role, response.status_code)
            if endpoint.json:
                assert "role" in response.json()["error"]  # says which role it needs


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_an_outsider_gets_404(client, world, endpoint):
    users, args = world
    client.force_login(users["outsider"])
    assert _call(client, endpoint, args[endpoint.name]).status_code == 404


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_an_anonymous_visitor_is_asked_to_log_in(client, world, endpoint):
    _, args = world
    response = _call(client, endpoint, args[endpoint.name])
    if endpoint.json:
        assert response.status_code == 401 and response.json()["error"].startswith("Log in first")
    else:
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_every_project_url_is_in_the_table():
    """A new endpoint must be added to ENDPOINTS above, so that its access is tested."""
    from twinlabel.urls import urlpatterns

    # Your own account (any logged-in user; tests/annotator/test_account.py): no project to guard.
    public = {"project_list", "healthz", "login", "logout", "account", "account_token", None}
    named = {p.name for p in urlpatterns if hasattr(p, "name")} - public
    assert named <= {e.name for e in ENDPOINTS}, named - {e.name for e in ENDPOINTS}


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.method != "get"], ids=_id)
def test_every_state_changing_request_needs_the_csrf_token(world, endpoint):
    from django.test import Client

    users, args = world
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["owner"])
    response = _call(client, endpoint, args[endpoint.name])
    assert response.status_code == 403
    assert "CSRF token" in (response.json()["error"] if endpoint.json else response.content.decode())
