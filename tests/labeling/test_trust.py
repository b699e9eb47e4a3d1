"""Suggestions you can trust, through the pipeline (tasks run eagerly): calibrated probabilities,
precision-targeted thresholds, the learning curve, and a fit with no trainable label."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labeling import services
from labeling.data import features_of
from labeling.ml.probe import load_probe
from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun
from labeling.paths import probe_path
from labeling.runs import finish
from tests.factories import make_scene_project, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]
TINY = {"resolution": 16, "epochs": 2, "batch_size": 8, "projector": [64], "warmup_epochs": 0}


def test_a_fit_with_no_trainable_label_succeeds_with_a_message_and_no_suggestions():
    project = make_scene_project(owner=make_user("owner"), images=12, labeled=2)
    services.pretrain_start(project=project, config=TINY)
    probe = TrainingRun.objects.get(project=project, kind=RunKind.PROBE)
    assert probe.status == RunStatus.SUCCEEDED, probe.error
    names = ", ".join(project.labels.order_by("id").values_list("name", flat=True))
    assert probe.metrics["message"] == f"not enough labels yet: need 3 of each for {names}"
    assert probe.metrics["weight_decay"] is None
    assert not Suggestion.objects.filter(run=probe).exists()
    assert ProjectModelState.objects.get(project=project).probe_run_id is None


def test_metrics_are_stored_without_nan_or_infinity(db):
    run = TrainingRun.objects.create(
        project=make_scene_project(owner=make_user("o"), images=2, labeled=0),
        kind=RunKind.PROBE,
        status=RunStatus.RUNNING,
        worker="w",
    )
    assert finish(
        run,
        RunStatus.SUCCEEDED,
        metrics={
            "a": float("nan"),
            "b": [np.float32("inf"), 1.5],
            "c": {"d": np.int64(3), "e": np.array([np.nan, 2.0])},
        },
    )
    run.refresh_from_db()
    assert run.metrics == {"a": None, "b": [None, 1.5], "c": {"d": 3, "e": [None, 2.0]}}
    json.dumps(run.metrics, allow_nan=False)


def test_suggestions_are_calibrated_and_pre_ticked_only_where_precision_is_proven():
    project = make_scene_project(owner=make_user("owner"), images=60, labeled=40)
    services.pretrain_start(project=project, config=TINY)
    probe = TrainingRun.objects.get(project=project, kind=RunKind.PROBE)
    assert probe.status == RunStatus.SUCCEEDED, probe.error
    trust = probe.metrics["trust"]
    assert trust["default_target"] == 0.9
    assert set(trust["ece"]) == {"uncalibrated", "calibrated"} and trust["ece"]["calibrated"] is not None
    saved = load_probe(probe_path(probe.id))
    for j, entry in enumerate(trust["labels"]):
        label_id = entry["label_id"]
        rows = Suggestion.objects.filter(run=probe, label_id=label_id)
        if not entry["confident"]:
            # A label that could not prove its precision is never pre-ticked.
            assert not rows.filter(predicted=True).exists()
            assert np.isinf(saved.confident[j])
        else:
            assert entry["precision_lower_bound"] >= entry["target"]
            assert not rows.filter(predicted=True, probability__lt=entry["threshold"]).exists()
            assert not rows.filter(predicted=False, probability__gte=entry["threshold"]).exists()
    # The stored probabilities are the calibrated ones (Platt on the raw probe output).
    image = Suggestion.objects.filter(run=probe).first().image_id
    _, features = features_of(embedding_set=probe.backbone_run.embedding_sets.first(), ids=np.array([image]))
    expected = saved.calibrated(saved.predict_proba(features))[0]
    stored = dict(Suggestion.objects.filter(run=probe, image_id=image).values_list("label_id", "probability"))
    for j, label_id in enumerate(saved.label_ids.tolist()):
        if saved.trained[j]:
            assert stored[label_id] == pytest.approx(float(expected[j]), abs=1e-5)
    assert [p["labeled"] for p in probe.metrics["learning_curve"]] == [10, 20, 40]


def test_a_reachable_target_makes_a_label_confident_and_an_unreachable_one_does_not(settings):
    project = make_scene_project(owner=make_user("owner"), images=60, labeled=40)
    services.pretrain_start(project=project, config=TINY)
    state = ProjectModelState.objects.get(project=project)
    labels = list(project.labels.order_by("id").values_list("id", flat=True))
    # A per-label target overrides the project's: 0.01 is met at once by any trained label that is
    # above chance; 0.999 is out of reach of 40 labeled images (the bound of 40 of 40 is 0.94).
    state.label_targets = {str(labels[0]): 0.999}
    state.precision_target = 0.01
    state.save()
    probe = services.probe_start(project=project)
    probe.refresh_from_db()
    entries = {e["label_id"]: e for e in probe.metrics["trust"]["labels"]}
    assert entries[labels[0]]["target"] == 0.999 and not entries[labels[0]]["confident"]
    assert not Suggestion.objects.filter(run=probe, label_id=labels[0], predicted=True).exists()
    for label_id in labels[1:]:
        entry = entries[label_id]
        assert entry["target"] == 0.01
        assert entry["confident"] == (entry["trained"] and not entry["near_chance"])
