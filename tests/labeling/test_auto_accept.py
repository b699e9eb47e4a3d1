"""Auto-accept: suggestions above a stricter threshold become ``model_auto`` tags on unlabeled images
nobody holds, a random sample waits for an audit, and audits that fall short withdraw the label."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from annotator.models import Image, ImageStatus, ImageTag, Source
from labeling.auto_accept import audit_decide, auto_accept_apply
from labeling.models import AuditResult, AutoTag, Decision, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import SuggestionDecision, TrainingRun
from labeling.trust import trust_fit, wilson_upper

pytestmark = pytest.mark.django_db


def _fit(team, *, auto_threshold=0.9, auto_accept=True, audit_rate=0.0):
    """A finished probe whose fit gave cat an auto threshold of ``auto_threshold`` and dog none."""
    pretrain = TrainingRun.objects.create(project=team.project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    labels = [
        {"label_id": team.cat.id, "confident": True, "threshold": 0.6, "target": 0.9, "auto_target": 0.97},
        {"label_id": team.dog.id, "confident": True, "threshold": 0.6, "target": 0.9, "auto_target": 0.97},
    ]
    labels[0]["auto_threshold"] = auto_threshold
    labels[1]["auto_threshold"] = None
    run = TrainingRun.objects.create(
        project=team.project,
        kind=RunKind.PROBE,
        status=RunStatus.SUCCEEDED,
        backbone_run=pretrain,
        metrics={"trust": {"labels": labels}},
    )
    ProjectModelState.objects.create(
        project=team.project, pretrain_run=pretrain, probe_run=run, auto_accept=auto_accept, audit_rate=audit_rate
    )
    return run


def _suggest(run, image_id, label, p):
    Suggestion.objects.create(run=run, image_id=image_id, label=label, probability=p, predicted=p >= 0.6)


@pytest.mark.team(images=8)
def test_only_unlabeled_free_undecided_images_get_tags_above_the_auto_threshold(team):
    run = _fit(team)
    ids, cat, dog = team.ids, team.cat, team.dog
    for image_id, p in zip(ids[:7], (0.95, 0.85, 0.99, 0.99, 0.97, 0.96, 0.93)):
        _suggest(run, image_id, cat, p)
    _suggest(run, ids[7], dog, 0.99)  # dog has no auto threshold
    Image.objects.filter(pk=ids[2]).update(status=ImageStatus.SUBMITTED, submitted_at=timezone.now())
    Image.objects.filter(pk=ids[3]).update(
        status=ImageStatus.IN_PROGRESS, locked_by=team.annotator, locked_until=timezone.now() + timedelta(minutes=5)
    )
    SuggestionDecision.objects.create(image_id=ids[4], label=cat, probability=0.97, decision=Decision.REJECTED)
    ImageTag.objects.create(image_id=ids[5], label=cat, author=team.annotator)  # a person's tag stays theirs
    before = dict(Image.objects.values_list("pk", "version"))

    assert auto_accept_apply(run_id=run.id) == 2

    auto = ImageTag.objects.filter(source=Source.MODEL_AUTO)
    assert sorted(auto.values_list("image_id", "label_id")) == [(ids[0], cat.id), (ids[6], cat.id)]
    assert ImageTag.objects.get(image_id=ids[5]).source == Source.HUMAN
    after = dict(Image.objects.values_list("pk", "version"))
    assert [i for i in ids if after[i] != before[i]] == [ids[0], ids[6]]  # an open editor re-reads those
    assert sorted(AutoTag.objects.values_list("image_id", "probability", "audit_result")) == [
        (ids[0], 0.95, ""),
        (ids[6], 0.93, ""),
    ]
    # Applied twice (a repeated finalise), nothing is written twice.
    assert auto_accept_apply(run_id=run.id) == 0 and AutoTag.objects.count() == 2


@pytest.mark.team(images=3)
def test_auto_accept_off_writes_nothing(team):
    run = _fit(team, auto_accept=False)
    _suggest(run, team.ids[0], team.cat, 0.99)
    assert auto_accept_apply(run_id=run.id) == 0
    assert not ImageTag.objects.exists() and not AutoTag.objects.exists()


@pytest.mark.team(images=40)
def test_the_audit_sample_is_drawn_at_the_audit_rate(team):
    run = _fit(team, audit_rate=0.5)
    for image_id in team.ids:
        _suggest(run, image_id, team.cat, 0.99)
    assert auto_accept_apply(run_id=run.id) == 40
    pending = AutoTag.objects.filter(audit_result=AuditResult.PENDING).count()
    assert 8 <= pending <= 32  # binomial(40, 0.5): outside this range once in ~10,000 seeds


def _audit_client(client, user, method, url, body=None):
    client.force_login(user)
    if method == "GET":
        return client.get(url)
    return client.post(url, json.dumps(body or {}), content_type="application/json")


@pytest.mark.team(images=4)
def test_audit_api_roles_and_a_rejection_removes_the_tag(client, team):
    run = _fit(team, audit_rate=1.0)
    for image_id in team.ids:
        _suggest(run, image_id, team.cat, 0.99)
    auto_accept_apply(run_id=run.id)
    url = reverse("api_audit_next", args=[team.project.id])
    assert _audit_client(client, team.outsider, "GET", url).status_code == 404
    assert _audit_client(client, team.annotator, "GET", url).status_code == 403
    answer = _audit_client(client, team.reviewer, "GET", url).json()
    assert answer["pending"] == 4 and answer["item"]["image"] == team.ids[0]
    decide = reverse("api_audit_decide", args=[answer["item"]["id"]])
    assert _audit_client(client, team.annotator, "POST", decide, {"verdict": "rejected"}).status_code == 403
    assert _audit_client(client, team.reviewer, "POST", decide, {"verdict": "maybe"}).status_code == 400
    response = _audit_client(client, team.reviewer, "POST", decide, {"verdict": "rejected"})
    assert response.status_code == 200 and response.json()["audit_result"] == "rejected"
    assert not ImageTag.objects.filter(image_id=team.ids[0]).exists()
    again = _audit_client(client, team.owner, "POST", decide, {"verdict": "confirmed"})
    assert again.status_code == 400 and "audited already" in again.json()["error"]
    confirm = reverse("api_audit_decide", args=[_audit_client(client, team.owner, "GET", url).json()["item"]["id"]])
    assert _audit_client(client, team.owner, "POST", confirm, {"verdict": "confirmed"}).status_code == 200
    assert ImageTag.objects.filter(image_id=team.ids[1], source=Source.MODEL_AUTO).exists()
    quality = _audit_client(client, team.owner, "GET", reverse("api_project_dashboard", args=[team.project.id])).json()
    cat = next(r for r in quality["suggestion_quality"]["labels"] if r["label"] == team.cat.id)
    assert (cat["auto_accepted"], cat["audited"], cat["audit_confirmed"], cat["audit_pending"]) == (4, 2, 1, 2)
    counts = next(r for r in quality["label_counts"] if r["label"] == team.cat.id)
    assert (counts["auto_tags"], counts["model_tags"], counts["human_tags"]) == (3, 0, 0)  # one was rejected


@pytest.mark.team(images=6)
def test_audits_that_fall_short_withdraw_the_label_from_auto_accept(team):
    run = _fit(team, audit_rate=1.0)
    for image_id in team.ids:
        _suggest(run, image_id, team.cat, 0.99)
    auto_accept_apply(run_id=run.id)
    tags = list(AutoTag.objects.order_by("id"))
    audit_decide(auto_tag=tags[0], user=team.reviewer, verdict="confirmed")
    run.refresh_from_db()
    assert run.metrics["trust"]["labels"][0]["auto_threshold"] == 0.9  # 1 of 1 right: no evidence against
    for tag in tags[1:4]:
        audit_decide(auto_tag=tag, user=team.reviewer, verdict="rejected")
    run.refresh_from_db()
    entry = run.metrics["trust"]["labels"][0]
    assert wilson_upper(1, 4) < 0.97 and entry["auto_threshold"] is None and entry["auto_withdrawn"]
    _suggest(run, team.ids[0], team.dog, 0.5)
    assert auto_accept_apply(run_id=run.id) == 0  # withdrawn: no new auto tags from this run


@pytest.mark.team(images=2)
def test_the_fit_gives_a_stricter_auto_threshold_and_none_after_failed_audits(team):
    ProjectModelState.objects.create(project=team.project, auto_accept=True, auto_accept_target=0.97)
    rng = np.random.default_rng(0)
    y = (rng.random((400, 2)) < 0.4).astype(np.float32)
    oof = np.clip(y * 0.8 + rng.normal(0.1, 0.15, y.shape), 0, 1).astype(np.float32)
    oof[:, 1] = rng.random(400)  # dog: a ranking no better than chance
    label_ids = np.array([team.cat.id, team.dog.id])

    def fit():
        _, _, metrics = trust_fit(
            project_id=team.project.id,
            y=y,
            oof=oof,
            trained=np.array([True, True]),
            ap=[0.95, 0.4],
            label_ids=label_ids,
            names=["cat", "dog"],
            labeled_ids=np.arange(400),
            positives=y.sum(0).astype(int),
        )
        return metrics

    cat, dog = fit()["labels"]
    assert cat["confident"] and cat["auto_target"] == 0.97
    assert cat["auto_threshold"] is not None and cat["auto_threshold"] >= cat["threshold"]
    assert dog["auto_threshold"] is None
    # Audits of cat's auto tags: 1 right of 2 (upper bound about 0.9, under 0.97). The next fit
    # gives it no auto threshold.
    run = TrainingRun.objects.create(project=team.project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
    for image_id, result in zip(team.ids, (AuditResult.CONFIRMED, AuditResult.REJECTED)):
        AutoTag.objects.create(run=run, image_id=image_id, label=team.cat, probability=0.99, audit_result=result)
    cat, _ = fit()["labels"]
    assert cat["audited"] == 2 and cat["audit_confirmed"] == 1
    assert cat["auto_threshold"] is None and cat["auto_withdrawn"]


@pytest.mark.team(images=2)
def test_settings_api_turns_auto_accept_on_and_refuses_bad_values(client, team):
    url = reverse("api_suggestion_settings", args=[team.project.id])
    client.force_login(team.owner)

    def patch(body):
        return client.patch(url, json.dumps(body), content_type="application/json")

    assert client.get(url).json()["auto_accept"] is False
    answer = patch({"auto_accept": True, "auto_accept_target": 0.98, "audit_rate": 0.2})
    assert answer.status_code == 200, answer.content
    assert (answer.json()["auto_accept"], answer.json()["auto_accept_target"], answer.json()["audit_rate"]) == (
        True,
        0.98,
        0.2,
    )
    for bad in ({"auto_accept": "yes"}, {"audit_rate": 1.5}, {"auto_accept_target": 1.0}, {"audit_rate": True}):
        response = patch(bad)
        assert response.status_code == 400, bad
    state = ProjectModelState.objects.get(project=team.project)
    assert (state.auto_accept, state.auto_accept_target, state.audit_rate) == (True, 0.98, 0.2)
    client.force_login(team.annotator)
    assert patch({"auto_accept": False}).status_code == 403


@pytest.mark.team(images=2)
def test_the_audit_page_confirms_with_a_form_and_says_when_done(client, team):
    run = _fit(team, audit_rate=1.0)
    _suggest(run, team.ids[0], team.cat, 0.99)
    auto_accept_apply(run_id=run.id)
    url = reverse("audit", args=[team.project.id])
    client.force_login(team.annotator)
    assert client.get(url).status_code == 403
    client.force_login(team.reviewer)
    page = client.get(url)
    assert page.status_code == 200 and b'id="audit-label">cat<' in page.content
    tag = AutoTag.objects.get()
    assert client.post(url, {"auto_tag": tag.id, "verdict": "confirmed"}).status_code == 302
    tag.refresh_from_db()
    assert tag.audit_result == AuditResult.CONFIRMED and tag.audited_by == team.reviewer
    assert b'id="audit-done"' in client.get(url).content
