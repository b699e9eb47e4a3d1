"""Model assistance in-process through its services (tasks run eagerly): pretrain -> embed ->
probe -> suggestions, decisions and queue orders, on the configured database."""

from __future__ import annotations

import io

import pytest

from annotator.services.annotations import image_submit
from annotator.services.queue import queue_next
from annotator.demo.scenes import render_scene
from annotator.models import Image, ImageTag
from twinlabel.web.compose import annotation_state
from annotator.services.images import images_import
from annotator.sources import ImageSource
from labeling import services
from labeling.config import pretrain_defaults
from labeling.paths import checkpoint_path
from labeling.models import Decision, ImageUncertainty, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import SuggestionDecision, TrainingRun
from tests.factories import make_user
from tests.labeling.conftest import TINY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def test_a_pretraining_ends_in_suggestions_for_every_unlabeled_image(project):
    run = services.pretrain_start(project=project, config=TINY)  # eager: pretrain, then the probe
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.device == "cpu" and run.attempts == 1 and run.epoch == 2 and run.loss_history
    from labeling.ml.train import load_checkpoint

    trained_with, _ = load_checkpoint(checkpoint_path(run.id))
    # The crop floor comes from the worker's device preset (CPU here) unless PRETRAIN_CROP_MIN is set.
    assert trained_with.crop_scale == (pretrain_defaults()["crop_min"], 1.0) == (0.5, 1.0)
    assert trained_with.colour == pretrain_defaults()["colour"] == run.config["colour"] == "strong"  # the CPU preset's
    assert trained_with.time_budget_s is None  # epochs were asked for: the preset's budget is not added
    assert trained_with.model.resolution == 16
    probe = TrainingRun.objects.get(project=project, kind=RunKind.PROBE)
    assert probe.status == RunStatus.SUCCEEDED, probe.error
    assert probe.metrics["labeled"] == 20 and "cv" in probe.metrics
    trained = sum(1 for label in probe.metrics["labels"] if label["trained"])
    assert trained >= 1
    unlabeled = Image.objects.filter(project=project).exclude(status="submitted")
    assert Suggestion.objects.filter(run=probe).count() == unlabeled.count() * trained
    assert ImageUncertainty.objects.filter(run=probe).count() == unlabeled.count()
    state = ProjectModelState.objects.get(project=project)
    assert (state.pretrain_run_id, state.probe_run_id) == (run.id, probe.id)
    suggestions = annotation_state(image=unlabeled.first())["suggestions"]
    assert len(suggestions) == trained and all(0 <= s["probability"] <= 1 for s in suggestions)


def test_a_refit_replaces_the_suggestions_whole_and_new_images_get_embedded(project):
    services.pretrain_start(project=project, config=TINY)
    first = ProjectModelState.objects.get(project=project).probe_run_id
    images_import(project=project, sources=[ImageSource("late.png", lambda: _png(99))])
    second = services.probe_start(project=project)
    second.refresh_from_db()
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert not Suggestion.objects.filter(run_id=first).exists()
    late = Image.objects.get(original_name="late.png")
    assert Suggestion.objects.filter(run=second, image=late).exists()
    assert Suggestion.objects.count() == Suggestion.objects.filter(run=second).count()


def test_the_probe_refits_after_k_submissions_once_per_burst(project, settings):
    settings.PROBE_REFIT_EVERY = 3
    services.pretrain_start(project=project, config=TINY)
    fits = TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).count()
    owner = project.created_by
    for image in Image.objects.filter(project=project, status="unlabeled").order_by("id")[:7]:
        image_submit(image=image, user=owner, version=image.version)
    # 7 submissions with K=3: two refits (at the 3rd and the 6th), none for the 7th yet.
    assert TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).count() == fits + 2
    assert ProjectModelState.objects.get(project=project).submissions_since_fit == 1


def test_a_refit_that_falls_due_beside_a_fine_tuning_stage_is_queued_at_once(project):
    """The fine-tuning stage leaves the count of submissions to the first stage, and a refit that falls
    due while it is queued or runs (minutes on a CPU) is queued at once beside it: one run of each
    stage at a time (the fine-tuning pauses for the first, labeling.suggesting._finetuned)."""
    from labeling.runs import current_backbone_run_id, probe_create

    services.pretrain_start(project=project, config=TINY)
    backbone_run_id = current_backbone_run_id(project_id=project.id)
    ProjectModelState.objects.filter(project=project).update(submissions_since_fit=7)
    follow = probe_create(project=project, backbone_run_id=backbone_run_id, finetune=True)
    assert follow.finetune_stage and follow.status == RunStatus.QUEUED
    assert ProjectModelState.objects.get(project=project).submissions_since_fit == 7
    assert probe_create(project=project, backbone_run_id=backbone_run_id, finetune=True) is None
    first = probe_create(project=project, backbone_run_id=backbone_run_id)
    assert first is not None and not first.finetune_stage and first.status == RunStatus.QUEUED
    assert ProjectModelState.objects.get(project=project).submissions_since_fit == 0
    assert probe_create(project=project, backbone_run_id=backbone_run_id) is None  # one first stage at a time
    services.run_cancel(run=first)
    assert probe_create(project=project, backbone_run_id=backbone_run_id).config == {}


def test_accepting_a_suggestion_makes_a_model_tag_and_rejecting_records_a_negative(project):
    services.pretrain_start(project=project, config=TINY)
    image = Image.objects.filter(project=project, status="unlabeled").first()
    first, second = Suggestion.objects.filter(image=image).select_related("label")[:2]
    owner = project.created_by
    services.suggestion_decide(image=image, label=first.label, user=owner, decision=Decision.ACCEPTED)
    services.suggestion_decide(image=image, label=second.label, user=owner, decision=Decision.REJECTED)
    tag = ImageTag.objects.get(image=image)
    assert (tag.label_id, tag.source) == (first.label_id, "model")
    decisions = dict(SuggestionDecision.objects.values_list("label_id", "decision"))
    assert decisions == {first.label_id: "accepted", second.label_id: "rejected"}
    image.refresh_from_db()
    assert image.version == 3  # each decision changed the image's annotations


def test_the_queue_serves_the_most_uncertain_first_and_by_suggested_label(project):
    services.pretrain_start(project=project, config=TINY)
    run_id = ProjectModelState.objects.get(project=project).probe_run_id
    top = ImageUncertainty.objects.filter(run_id=run_id).order_by("-score", "image_id").first()
    owner = project.created_by
    assert queue_next(project=project, user=owner, order="uncertain").id == top.image_id
    suggested = Suggestion.objects.filter(run_id=run_id, predicted=True).order_by("-probability").first()
    if suggested is not None:
        other = make_user("other")
        got = queue_next(project=project, user=other, order=f"label:{suggested.label_id}")
        assert got is not None and Suggestion.objects.get(run_id=run_id, image=got, label=suggested.label).predicted


def test_a_run_queued_before_colour_existed_trains_with_the_reference_colours(project):
    from labeling import tasks
    from labeling.ml.train import load_checkpoint

    run = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config=TINY)  # no "colour" key
    assert tasks.gpu_pretrain.apply(args=[run.id]).get() == "succeeded"
    trained_with, _ = load_checkpoint(checkpoint_path(run.id))
    assert trained_with.colour == "reference" != pretrain_defaults()["colour"]


def test_a_pretraining_is_refused_while_another_is_active(project):
    TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config=TINY)
    with pytest.raises(Exception, match="already queued or running"):
        services.pretrain_start(project=project, config=TINY)
    with pytest.raises(Exception, match="“epochs” must be a number"):
        services.pretrain_start(project=project, config={**TINY, "epochs": 0})
    with pytest.raises(Exception, match="“crop_min” must be a number from 0.05 to 1.0"):
        services.pretrain_start(project=project, config={**TINY, "crop_min": 0})
    with pytest.raises(Exception, match="“colour” must be one of reference, strong"):
        services.pretrain_start(project=project, config={**TINY, "colour": "neon"})


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    render_scene(index, seed=5, size=(48, 48)).image.save(buffer, "PNG")
    return buffer.getvalue()
