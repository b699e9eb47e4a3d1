"""The precision targets (GET / PATCH /api/projects/<id>/suggestion-settings/) and Accept all taking
only confident suggestions. Access per role is in tests/annotator/test_access.py."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotator.models import ImageTag, Role
from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, SuggestionDecision, TrainingRun
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def pets():
    owner = make_user("owner")
    project = make_project(owner=owner, labels=("cat", "dog", "bird"))
    return project, owner


def _patch(client, project, body):
    return client.patch(
        reverse("api_suggestion_settings", args=[project.id]), json.dumps(body), content_type="application/json"
    )


def test_it_starts_at_0_9_and_an_admin_sets_the_project_and_per_label_targets(client, pets):
    project, owner = pets
    cat, dog, _ = project.labels.order_by("id")
    client.force_login(owner)
    got = client.get(reverse("api_suggestion_settings", args=[project.id])).json()
    assert (got["precision_target"], got["label_targets"]) == (0.9, {})
    assert [(e["label"], e["target"], e["override"], e["confident"]) for e in got["labels"]] == [
        ("cat", 0.9, False, None),
        ("dog", 0.9, False, None),
        ("bird", 0.9, False, None),
    ]
    response = _patch(
        client, project, {"precision_target": 0.95, "label_targets": {str(cat.id): 0.8, str(dog.id): 0.99}}
    )
    assert response.status_code == 200, response.content
    assert response.json()["precision_target"] == 0.95
    assert response.json()["label_targets"] == {str(cat.id): 0.8, str(dog.id): 0.99}
    assert [e["target"] for e in response.json()["labels"]] == [0.8, 0.99, 0.95]
    _patch(client, project, {"label_targets": {str(dog.id): None}})  # null: back to the project's
    state = ProjectModelState.objects.get(project=project)
    assert (state.precision_target, state.label_targets) == (0.95, {str(cat.id): 0.8})


@pytest.mark.parametrize(
    "body, says",
    [
        ({"precision_target": 1.5}, "from 0.5 to 0.999"),
        ({"precision_target": "high"}, "from 0.5 to 0.999"),
        ({"label_targets": {"999999": 0.9}}, "not a label of this project"),
        ({"label_targets": [0.9]}, "must be an object"),
        ({"threshold": 0.3}, "Unknown setting"),
    ],
)
def test_a_bad_setting_is_a_400_that_says_what_to_fix(client, pets, body, says):
    project, owner = pets
    client.force_login(owner)
    response = _patch(client, project, body)
    assert response.status_code == 400 and says in response.json()["error"]
    assert not ProjectModelState.objects.filter(project=project, precision_target__gt=0.9).exists()


def test_a_label_of_another_project_is_refused(client, pets):
    project, owner = pets
    other = make_project(owner=owner, labels=("fish",), name="Other")
    client.force_login(owner)
    response = _patch(client, project, {"label_targets": {str(other.labels.get().id): 0.9}})
    assert response.status_code == 400


def test_a_change_queues_a_refit_when_there_is_a_backbone(pets, settings, tmp_path):
    from labeling import services

    project, owner = pets
    settings.MODEL_DIR = tmp_path
    pretrain = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=project, pretrain_run=pretrain)
    services.suggestion_settings_update(project=project, precision_target=0.8)
    assert TrainingRun.objects.filter(project=project, kind=RunKind.PROBE, status=RunStatus.QUEUED).count() == 1


def test_accept_all_accepts_only_confident_suggestions(client, pets):
    project, owner = pets
    annotator = make_user("annie")
    add_member(project, annotator, Role.ANNOTATOR)
    cat, dog, bird = project.labels.order_by("id")
    (image_id,) = add_images(project, 1)
    probe = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=project, probe_run=probe)
    Suggestion.objects.bulk_create(
        [
            Suggestion(run=probe, image_id=image_id, label=cat, probability=0.93, predicted=True),
            Suggestion(run=probe, image_id=image_id, label=dog, probability=0.97, predicted=False),  # not confident
            Suggestion(run=probe, image_id=image_id, label=bird, probability=0.10, predicted=False),
        ]
    )
    client.force_login(annotator)
    response = client.post(
        reverse("api_suggestions_accept_all", args=[image_id]), "{}", content_type="application/json"
    )
    assert response.status_code == 200
    assert set(ImageTag.objects.filter(image_id=image_id).values_list("label__name", flat=True)) == {"cat"}
    assert set(SuggestionDecision.objects.values_list("label__name", flat=True)) == {"cat"}


def test_rejections_withdraw_a_labels_confidence_at_once(pets):
    from labeling import services
    from labeling.ml.confidence import wilson_lower

    project, owner = pets
    cat, dog, _ = project.labels.order_by("id")
    ids = add_images(project, 6)
    # cat and dog were confident on 30 of 30 out-of-fold predictions (bound 0.917 >= 0.9).
    assert wilson_lower(30, 30) >= 0.9 > wilson_lower(30, 31)
    probe = TrainingRun.objects.create(
        project=project,
        kind=RunKind.PROBE,
        status=RunStatus.SUCCEEDED,
        metrics={
            "trust": {
                "labels": [
                    {
                        "label_id": cat.id,
                        "target": 0.9,
                        "confident": True,
                        "threshold": 0.8,
                        "predictions": 30,
                        "correct": 30,
                    },
                    {
                        "label_id": dog.id,
                        "target": 0.9,
                        "confident": True,
                        "threshold": 0.8,
                        "predictions": 30,
                        "correct": 30,
                    },
                ]
            }
        },
    )
    ProjectModelState.objects.create(project=project, probe_run=probe)
    Suggestion.objects.bulk_create(
        [
            Suggestion(run=probe, image_id=i, label=label, probability=0.9, predicted=True)
            for i in ids
            for label in (cat, dog)
        ]
    )
    from annotator.models import Image

    # An accepted dog keeps dog confident (31 of 31); one rejected cat is 30 of 31: bound 0.868 < 0.9.
    services.suggestion_decide(image=Image.objects.get(pk=ids[0]), label=dog, user=owner, decision="accepted")
    assert Suggestion.objects.filter(label=dog, predicted=True).count() == 6
    services.suggestion_decide(image=Image.objects.get(pk=ids[0]), label=cat, user=owner, decision="rejected")
    assert not Suggestion.objects.filter(label=cat, predicted=True).exists()
    assert Suggestion.objects.filter(label=dog, predicted=True).count() == 6
    probe.refresh_from_db()
    entry = probe.metrics["trust"]["labels"][0]
    assert (entry["confident"], entry["threshold"]) == (False, None)
    assert entry["withdrawn"]["measured"] == 31


def test_a_withdrawal_keeps_what_another_writer_saved_to_the_run_since_it_was_read(pets, monkeypatch):
    """Every writer of a run's trust reads and writes the whole metrics JSON. An audit's verdict
    saved between a decision's check and its write (here: inside live_estimate, as a concurrent
    request would) must survive the decision's withdrawal, and the withdrawal must survive too."""
    from annotator.models import Image
    from labeling import services, trust

    project, owner = pets
    cat, dog, _ = project.labels.order_by("id")
    ids = add_images(project, 2)
    entry = {"target": 0.9, "confident": True, "threshold": 0.8, "predictions": 30, "correct": 30}
    probe = TrainingRun.objects.create(
        project=project,
        kind=RunKind.PROBE,
        status=RunStatus.SUCCEEDED,
        metrics={"trust": {"labels": [{**entry, "label_id": cat.id, "auto_threshold": 0.97}]}},
    )
    ProjectModelState.objects.create(project=project, probe_run=probe)
    Suggestion.objects.create(run=probe, image_id=ids[0], label=cat, probability=0.9, predicted=True)
    estimate = trust.live_estimate

    def meanwhile(**kwargs):
        run = TrainingRun.objects.get(pk=probe.pk)  # another request: the audits fell short
        run.metrics["trust"]["labels"][0].update(auto_threshold=None, auto_withdrawn="audits")
        TrainingRun.objects.filter(pk=probe.pk).update(metrics=run.metrics)
        return estimate(**kwargs)

    monkeypatch.setattr(trust, "live_estimate", meanwhile)
    services.suggestion_decide(image=Image.objects.get(pk=ids[0]), label=cat, user=owner, decision="rejected")
    probe.refresh_from_db()
    (saved,) = probe.metrics["trust"]["labels"]
    assert (saved["confident"], saved["withdrawn"]["measured"]) == (False, 31)  # the decision's
    assert (saved["auto_threshold"], saved["auto_withdrawn"]) == (None, "audits")  # the audit's, kept
