"""Every model in the Django admin: its list (with a search and each filter) and an object's page open."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from annotator.models import Box, Image, ImageTag
from labeling.models import Decision, EmbeddingSet, ImageUncertainty, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import SuggestionDecision, TrainingRun
from tests.factories import make_project, make_user
from twinlabel.webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(tmp_path, settings):
    settings.MODEL_DIR = tmp_path
    owner = make_user("owner")
    project = make_project(owner=owner)
    cat = project.labels.first()
    image = Image.objects.create(
        project=project,
        file="a.png",
        thumbnail="a.jpg",
        original_name="a.png",
        width=4,
        height=4,
        size_bytes=1,
        sha256="0" * 64,
        status="submitted",
        submitted_at=timezone.now(),
        submitted_by=owner,
    )
    Box.objects.create(image=image, label=cat, x=0, y=0, w=1, h=1, author=owner)
    ImageTag.objects.create(image=image, label=cat, author=owner)
    run = TrainingRun.objects.create(
        project=project,
        kind=RunKind.PRETRAIN,
        status=RunStatus.SUCCEEDED,
        config={"epochs": 2},
        loss_history=[[1, 3.0], [2, 2.0]],
        metrics={"cv": {"map": 0.5}},
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    EmbeddingSet.objects.create(run=run, project=project, path="/x.npz", resolution=16, count=1, dim=8)
    ProjectModelState.objects.create(project=project, pretrain_run=run)
    Suggestion.objects.create(run=run, image=image, label=cat, probability=0.5, predicted=True)
    ImageUncertainty.objects.create(run=run, image=image, score=0.1)
    SuggestionDecision.objects.create(
        image=image, label=cat, run=run, probability=0.5, decision=Decision.ACCEPTED, user=owner
    )
    hook = Webhook.objects.create(
        project=project, url="https://hooks.example/", events=["run.finished"], secret="s" * 20
    )
    WebhookDelivery.objects.create(webhook=hook, event="ping", payload={"event": "ping"}, history=[{"status": 500}])
    return make_user("root", is_staff=True, is_superuser=True)


def test_it_lists_searches_filters_and_opens_every_model(client, objects):
    client.force_login(objects)
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url
        if model_admin.search_fields:
            assert client.get(url, {"q": "a"}).status_code == 200, url
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert client.get(change).status_code == 200, change


def test_runs_are_read_only_in_the_admin(client, objects):
    client.force_login(objects)
    run = TrainingRun.objects.get()
    page = client.get(reverse("admin:labeling_trainingrun_change", args=[run.id])).content.decode()
    assert "2 points" in page and "&quot;epochs&quot;: 2" in page and 'name="status"' not in page
    assert client.get(reverse("admin:labeling_trainingrun_add")).status_code == 403


def test_a_webhook_gets_a_test_event_from_the_admin(client, objects, django_capture_on_commit_callbacks):
    from unittest import mock

    client.force_login(objects)
    hook = Webhook.objects.get()
    with mock.patch("twinlabel.webhooks.tasks.webhook_deliver.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("admin:webhooks_webhook_changelist"),
                {"action": "send_test_event", "_selected_action": [hook.id]},
            )
    assert response.status_code == 302
    ping = WebhookDelivery.objects.filter(webhook=hook, attempts=0).get(event="ping", history=[])
    delay.assert_called_once_with(ping.id)
