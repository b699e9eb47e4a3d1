"""Issue 14, item 9: expensive actions are gated: who may create projects, how many; caps on
active runs per person and on the server; tight pretraining bounds with the valid keys listed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotator.models import Project
from labeling.models import RunKind, RunStatus, TrainingRun
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


def _create(client, name="p"):
    return client.post(reverse("api_projects"), {"name": name, "labels": ["a"]}, content_type="application/json")


def test_it_lets_only_staff_create_projects_when_so_configured(client, settings):
    settings.PROJECT_CREATORS = "staff"
    client.force_login(make_user("plain"))
    response = _create(client)
    assert response.status_code == 403 and "PROJECT_CREATORS=staff" in response.json()["error"]
    client.force_login(make_user("boss", is_staff=True))
    assert _create(client).status_code == 201
    assert list(Project.objects.values_list("created_by__username", flat=True)) == ["boss"]


def test_the_page_form_obeys_the_same_rule(client, settings):
    settings.PROJECT_CREATORS = "staff"
    client.force_login(make_user("plain"))
    response = client.post(reverse("project_list"), {"name": "p", "labels": "a"})
    assert response.status_code == 403 and not Project.objects.exists()


def test_it_caps_the_projects_one_person_creates(client, settings):
    settings.USER_MAX_PROJECTS = 2
    client.force_login(make_user("eager"))
    assert [_create(client, f"p{i}").status_code for i in range(3)] == [201, 201, 429]
    assert "USER_MAX_PROJECTS" in _create(client).json()["error"]
    assert Project.objects.count() == 2


@pytest.fixture
def admin_client(client):
    owner = make_user("owner")
    client.force_login(owner)
    client.owner = owner
    client.projects = [make_project(owner, name=f"p{i}") for i in range(3)]
    return client


def _pretrain(client, project, config=None):
    return client.post(
        reverse("api_project_runs", args=[project.id]),
        {"kind": "pretrain", "config": config or {"epochs": 1}},
        content_type="application/json",
    )


def test_it_caps_active_runs_per_person(admin_client, settings):
    settings.RUNS_MAX_ACTIVE_PER_USER = 2
    codes = [_pretrain(admin_client, p).status_code for p in admin_client.projects]
    assert codes == [201, 201, 429]
    assert "RUNS_MAX_ACTIVE_PER_USER" in _pretrain(admin_client, admin_client.projects[2]).json()["error"]
    TrainingRun.objects.filter(project=admin_client.projects[0]).update(status=RunStatus.SUCCEEDED)
    assert _pretrain(admin_client, admin_client.projects[2]).status_code == 201  # a finished run frees a slot


def test_it_caps_pretrainings_on_the_whole_server(admin_client, settings):
    settings.PRETRAIN_MAX_ACTIVE = 1
    other = make_user("other")
    TrainingRun.objects.create(
        project=make_project(other, name="theirs"), kind=RunKind.PRETRAIN, config={}, created_by=other
    )
    response = _pretrain(admin_client, admin_client.projects[0])
    assert response.status_code == 429 and "PRETRAIN_MAX_ACTIVE" in response.json()["error"]


@pytest.mark.parametrize(
    "config, message",
    [
        ({"epochs": 2000}, "“epochs” must be a number from 1 to 1000"),
        ({"batch_size": 8192}, "“batch_size” must be a number from 8 to 4096"),
        ({"projector": [16384] * 4}, "“projector” must be a list of 1 to 3 layer widths from 16 to 8192"),
        ({"projector": [8192] * 4}, "1 to 3 layer widths"),
        (
            {"epohcs": 5},
            "Unknown pretraining setting(s): epohcs. The settings are: resolution, epochs, batch_size, "
            "lr_weights, warmup_epochs, seed, crop_min, projector, small_stem, profile",
        ),
    ],
)
def test_the_issues_maximal_pretraining_is_refused_with_the_bounds(admin_client, config, message):
    response = _pretrain(admin_client, admin_client.projects[0], config)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not TrainingRun.objects.exists()
