"""Issue 14, items 15 and 16: "add member" bounds the user names one admin can probe; a
Content-Security-Policy on every page; the API schema behind login; a health check that fails on
a database without tables."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from annotator.models import Membership
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    owner = make_user("owner")
    client.force_login(owner)
    client.project = make_project(owner)
    return client


def _add(client, username):
    return client.post(
        reverse("members", args=[client.project.id]), {"username": username, "role": "annotator"}, follow=True
    ).content.decode()


def test_an_admin_can_probe_only_a_few_unknown_user_names_an_hour(admin_client, settings):
    settings.MEMBER_ADD_MISSES_PER_HOUR = 3
    make_user("zoe")
    for name in ("alice", "bob", "carol"):
        assert f"There is no user called “{name}”" in _add(admin_client, name)
    page = _add(admin_client, "zoe")  # now even an existing name is not looked up
    assert "MEMBER_ADD_MISSES_PER_HOUR" in page and "There is no user" not in page
    assert not Membership.objects.filter(user__username="zoe").exists()


def test_a_disabled_account_answers_like_a_missing_one(admin_client):
    make_user("gone", is_active=False)
    assert "There is no user called “gone”" in _add(admin_client, "gone")
    assert not Membership.objects.filter(user__username="gone").exists()


def test_finding_a_name_does_not_count_against_the_admin(admin_client, settings):
    settings.MEMBER_ADD_MISSES_PER_HOUR = 1
    for name in ("a1", "a2", "a3"):
        make_user(name)
        _add(admin_client, name)
    assert Membership.objects.filter(project=admin_client.project).count() == 4


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/accounts/login/",
        "/accounts/",
        "/api/projects/",
        "/api/docs/",
        "/projects/{id}/",
        "/projects/{id}/annotate/",
        "/projects/{id}/dashboard/",
        "/healthz",
        "/no/such/page/",
        "/admin/",
    ],
)
def test_every_page_carries_a_content_security_policy(admin_client, path):
    response = admin_client.get(path.format(id=admin_client.project.id))
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]


def test_the_api_schema_needs_a_login(client):
    assert client.get("/api/schema/").status_code == 401
    client.force_login(make_user("ann"))
    assert client.get("/api/schema/").status_code == 200


def test_the_health_check_fails_when_the_database_has_no_tables(client, monkeypatch):
    assert client.get("/healthz").json()["ok"] is True
    from annotator.models import Project

    monkeypatch.setattr(Project._meta, "db_table", "no_such_table_here")  # as if never migrated
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["ok"] is False and "migrate" in response.json()["error"]
    assert connection.vendor in response.json()["database"]
