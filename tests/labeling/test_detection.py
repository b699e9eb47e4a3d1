"""Detector runs in-process (tasks run eagerly): boxes submitted -> a detector fits on the Barlow
Twins backbone -> box suggestions swapped in whole, thresholds by the tag suggestions' rule, a
refit after K boxed submissions, and a run resumed from its checkpoint after its worker died."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pytest
import torch
from django.utils import timezone

from annotator.demo.scenes import LABELS, render_scene
from annotator.models import Image, ImageStatus
from annotator.services.annotations import BoxIn, ImageAnnotations, annotation_save, annotations_import, image_submit
from annotator.services.images import images_import
from annotator.services.projects import project_create
from annotator.sources import ImageSource
from labeling import config as labeling_config
from labeling import detection, services
from labeling.detection import shown_cutoffs
from labeling.models import BoxSuggestion, ImageUncertainty, ProjectModelState, RunKind, RunStatus, TrainingRun
from labeling.paths import detector_path
from labeling.runs import RunMonitor
from labeling.ml.confidence import precision_threshold
from labeling.trust import BOX_SHOWN_FROM, SHOW_PRECISION, box_trust
from tests.factories import make_user
from tests.labeling.conftest import TINY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]

SIZE = (96, 72)  # not square: the letterbox is exercised
# 12 steps leave FCOS's scores near its 0.01 class prior (sqrt(class x centerness) ~ 0.05-0.07), so
# the app's 0.05 floor on what is written could drop every box of a run: the tiny run writes from 0.001.
TINY_DETECTOR = {
    "size": 64,
    "fpn_channels": 64,
    "steps": 12,
    "batch_size": 4,
    "lr": 3e-3,
    "warmup_steps": 2,
    "score_thresh": 0.001,
}


@pytest.fixture(autouse=True)
def tiny_detector(monkeypatch):
    monkeypatch.setitem(labeling_config.DETECTOR_PRESETS, "cpu", dict(TINY_DETECTOR))
    monkeypatch.setitem(labeling_config.DETECTOR_PRESETS, "gpu", dict(TINY_DETECTOR))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _boxes(index: int, label_id: dict[str, int]) -> tuple[BoxIn, ...]:
    return tuple(BoxIn(label_id[o.label], *o.box) for o in render_scene(index, size=SIZE).objects)


def boxed_project(*, images: int = 20, boxed: int = 12):
    """Demo scenes of 96 x 72 px, the first ``boxed`` submitted with their true boxes."""
    owner = make_user("owner")
    project = project_create(name="Boxes", user=owner, labels=LABELS)

    def png(i: int) -> bytes:
        buffer = io.BytesIO()
        render_scene(i, size=SIZE).image.save(buffer, "PNG")
        return buffer.getvalue()

    report = images_import(
        project=project, sources=[ImageSource(f"s{i}.png", lambda i=i: png(i)) for i in range(images)]
    )
    label_id = dict(project.labels.values_list("name", "id"))
    annotations_import(
        project=project,
        user=owner,
        items=[
            ImageAnnotations(item.image_id, boxes=_boxes(i, label_id)) for i, item in enumerate(report.imported[:boxed])
        ],
    )
    return project


def test_a_detector_run_suggests_boxes_for_the_unsubmitted_images_and_swaps_them_in_whole():
    project = boxed_project()
    services.pretrain_start(project=project, config=TINY)
    first = services.detector_start(project=project)
    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED, first.error
    assert first.metrics["backbone"] == "barlow_twins" and first.backbone_run_id is not None
    assert first.metrics["held_out_images"] >= 1 and set(first.metrics["ap50"]) <= set(LABELS)
    assert {e["label"] for e in first.metrics["trust"]["labels"]} == set(first.metrics["ap50"])
    # COCO's own evaluator on the same held-out detections, per label and overall (the dashboard's).
    coco = first.metrics["coco"]
    assert set(coco["labels"]) == set(first.metrics["ap50"]) and 0 <= coco["ap50"] <= 1 and 0 <= coco["map"] <= 1
    assert all(v["ap50"] is None or v["map"] <= v["ap50"] + 1e-9 for v in coco["labels"].values())
    assert ProjectModelState.objects.get(project=project).detector_run_id == first.id
    suggested = BoxSuggestion.objects.filter(run=first)
    assert suggested.exists()
    assert not suggested.filter(image__status=ImageStatus.SUBMITTED).exists()
    for s in suggested:
        assert 0 <= s.x and s.x + s.w <= SIZE[0] + 1e-3 and 0 <= s.y and s.y + s.h <= SIZE[1] + 1e-3
        assert 0 <= s.score <= 1
    # The plan is on the run: a resumed run trains on the same images.
    plan = first.config["plan"]
    assert len(plan["train"]) + len(plan["held_out"]) == 12 and plan["detector"]["trainable_layers"] == 0
    # Its box doubt, one row per image it scored, for the "most uncertain first" order.
    doubts = ImageUncertainty.objects.filter(run=first)
    assert doubts.count() == Image.objects.filter(project=project).exclude(status=ImageStatus.SUBMITTED).count()
    assert all(0 <= d.score <= 1 for d in doubts)

    second = services.detector_start(project=project)
    second.refresh_from_db()
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert ProjectModelState.objects.get(project=project).detector_run_id == second.id
    assert not BoxSuggestion.objects.filter(run=first).exists()  # swapped whole
    assert not ImageUncertainty.objects.filter(run=first).exists()


def test_a_later_fit_reads_the_submitted_images_from_the_detector_cache_not_their_files():
    from django.core.files.storage import default_storage

    from labeling.ml.cache import ImageCache, store_dir
    from labeling.paths import project_cache_dir

    project = boxed_project()
    first = services.detector_start(project=project)
    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED, first.error
    plan, size = first.config["plan"], TINY_DETECTOR["size"]
    store = ImageCache(store_dir(project_cache_dir(project.id), size, "letterbox"), size, fit="letterbox")
    assert store.rebuilt is None and sorted(store.ids.tolist()) == sorted(plan["train"] + plan["held_out"])
    # The submitted images' files are gone: a fit that decoded them again would fail.
    for image in Image.objects.filter(project=project, status=ImageStatus.SUBMITTED):
        default_storage.delete(image.file.name)
    second = services.detector_start(project=project)
    second.refresh_from_db()
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert second.metrics["train_images"] == first.metrics["train_images"] == len(plan["train"])
    assert second.metrics["held_out_images"] == len(plan["held_out"]) >= 1


def test_without_a_pretraining_the_detector_starts_from_random_weights():
    project = boxed_project(images=8, boxed=4)
    run = services.detector_start(project=project)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.metrics["backbone"] == "random" and run.metrics["held_out_images"] == 0
    # Nothing held out: nothing can be shown to meet a precision target.
    assert not BoxSuggestion.objects.filter(run=run, predicted=True).exists()


def test_a_fit_plans_its_time_and_trainable_stages_by_the_rules_it_was_queued_with():
    project = boxed_project(images=14, boxed=12)
    rules = {"finetune_from": 10, "seconds_per_image": 3.0, "min_seconds": 5.0}
    run = TrainingRun.objects.create(
        project=project,
        kind=RunKind.DETECTOR,
        config={"detector": {**TINY_DETECTOR, "time_budget_s": 600}, "rules": rules},
    )
    plan = detection._plan(run)
    assert plan["boxed_images"] == 12
    assert plan["detector"] == {**TINY_DETECTOR, "time_budget_s": 36.0, "trainable_layers": 2}
    # A run queued before runs stored their rules gets the worker's (CPU: the backbone trains from 100).
    run.config = {"detector": {**TINY_DETECTOR, "time_budget_s": 600}}
    assert detection._plan(run)["detector"] == {**TINY_DETECTOR, "time_budget_s": 60.0, "trainable_layers": 0}
    # What a run is queued with.
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    queued = services.detector_start(project=project)
    assert queued.config["rules"] == labeling_config.detector_rules()


def test_a_project_without_boxes_has_nothing_to_fit_yet():
    project = boxed_project(images=6, boxed=0)
    run = services.detector_start(project=project)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and "not enough boxes" in run.metrics["message"]
    assert not BoxSuggestion.objects.exists()


def test_an_image_tagged_with_a_box_class_but_without_its_box_is_left_out():
    project = boxed_project(images=8, boxed=4)
    image = Image.objects.filter(project=project, status=ImageStatus.SUBMITTED).order_by("id").first()
    boxed_label = image.boxes.first().label_id
    annotation_save(image=image, user=project.created_by, version=image.version, boxes=[], tag_label_ids=[boxed_label])
    run = services.detector_start(project=project)
    run.refresh_from_db()
    assert run.config["plan"]["left_out_ambiguous"] == 1 and image.id not in run.config["plan"]["train"]


def test_the_detector_refits_after_k_submitted_images_with_boxes(settings):
    settings.DETECTOR_REFIT_EVERY = 2
    project = boxed_project(images=12, boxed=0)
    services.pretrain_start(project=project, config=TINY)
    label_id = dict(project.labels.values_list("name", "id"))
    owner = project.created_by
    images = list(Image.objects.filter(project=project).order_by("id"))

    def submit(image: Image, index: int, boxes: bool) -> None:
        annotation_save(
            image=image,
            user=owner,
            version=image.version,
            boxes=_boxes(index, label_id) if boxes else [],
            tag_label_ids=[],
        )
        image.refresh_from_db()
        image_submit(image=image, user=owner, version=image.version)

    submit(images[0], 0, boxes=True)
    submit(images[1], 1, boxes=False)  # no boxes: not counted
    assert not TrainingRun.objects.filter(project=project, kind=RunKind.DETECTOR).exists()
    submit(images[2], 2, boxes=True)
    assert TrainingRun.objects.filter(project=project, kind=RunKind.DETECTOR).count() == 1
    submit(images[3], 3, boxes=True)
    assert ProjectModelState.objects.get(project=project).boxed_since_fit == 1
    submit(images[4], 4, boxes=True)
    assert TrainingRun.objects.filter(project=project, kind=RunKind.DETECTOR).count() == 2


class Killed(BaseException):
    """What kill -9 leaves: no except clause runs, the run stays 'running' with its heartbeat."""


def test_a_detector_run_whose_worker_died_resumes_from_its_checkpoint(monkeypatch, settings):
    project = boxed_project(images=10, boxed=6)
    monkeypatch.setitem(labeling_config.DETECTOR_PRESETS, "cpu", {**TINY_DETECTOR, "steps": 20})
    run = TrainingRun.objects.create(
        project=project, kind=RunKind.DETECTOR, config={"detector": {**TINY_DETECTOR, "steps": 20}}
    )
    calls = {"n": 0}
    original = RunMonitor.should_stop

    def dies_at_step_13(self) -> bool:
        calls["n"] += 1
        if calls["n"] > 13:
            raise Killed
        return original(self)

    monkeypatch.setattr(RunMonitor, "should_stop", dies_at_step_13)
    with pytest.raises(Killed):
        detection.run_detector(run.id, "node-a", send_later=_unexpected_send)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    first = torch.load(detector_path(run.id), weights_only=True)
    assert first["step"] == 12  # checkpointed every 2 steps (a tenth of the run)

    monkeypatch.setattr(RunMonitor, "should_stop", original)
    TrainingRun.objects.filter(pk=run.id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert detection.run_detector(run.id, "node-b", send_later=_unexpected_send) == "succeeded"
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.attempts == 2
    done = torch.load(detector_path(run.id), weights_only=True)
    assert done["step"] == 20 and done["losses"][:12] == first["losses"]


def _unexpected_send(run: TrainingRun) -> None:
    raise AssertionError(f"run {run.id} paused: nothing was waiting")


def test_a_detector_fit_pauses_for_a_waiting_run_and_resumes_from_its_checkpoint(monkeypatch, settings):
    project = boxed_project(images=10, boxed=6)
    detector = {**TINY_DETECTOR, "steps": 20}
    run = TrainingRun.objects.create(project=project, kind=RunKind.DETECTOR, config={"detector": detector})
    waiting = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config=TINY)  # queued
    settings.TRAINING_SLICE_S = 1e-6  # a slice of one step
    sent: list[TrainingRun] = []

    assert detection.run_detector(run.id, "node-a", send_later=sent.append) == "yielded"
    run.refresh_from_db()
    # Back in the queue with its claim given back, a message for the dashboard, and sent again.
    assert run.status == RunStatus.QUEUED and run.worker == "" and run.attempts == 0
    assert run.error.startswith("Paused at step 1 ") and [r.id for r in sent] == [run.id]
    paused = torch.load(detector_path(run.id), weights_only=True)
    assert paused["step"] == 1 and len(paused["losses"]) == 1

    TrainingRun.objects.filter(pk=waiting.id).update(status=RunStatus.SUCCEEDED)  # nothing waits now
    assert detection.run_detector(run.id, "node-a", send_later=_unexpected_send) == "succeeded"
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.attempts == 1 and run.error == ""
    done = torch.load(detector_path(run.id), weights_only=True)
    assert done["step"] == 20 and done["losses"][:1] == paused["losses"]
    assert BoxSuggestion.objects.filter(run=run).exists()


def test_box_thresholds_follow_the_tag_suggestions_rule():
    project = boxed_project(images=2, boxed=0)
    label_ids = list(project.labels.order_by("id").values_list("id", flat=True))[:2]
    rng = np.random.default_rng(0)
    good = rng.uniform(0.5, 1.0, 200)
    thresholds, trust = box_trust(
        project_id=project.id,
        label_ids=label_ids,
        names=["good", "chance"],
        scores=[good, rng.uniform(0, 1, 200)],
        correct=[good > 0.7, rng.random(200) < 0.05],
        truths=[190, 100],
        ap50=[0.9, 0.03],
        labeled_ids=np.zeros(0, np.int64),
    )
    # The one implementation: the same threshold as a tag label with these rows would get.
    assert thresholds[0] == precision_threshold(good > 0.7, good, 0.9).threshold
    assert 0.65 <= thresholds[0] < 0.8 and trust["labels"][0]["confident"]
    assert trust["labels"][0]["precision_lower_bound"] >= 0.9
    assert np.isinf(thresholds[1]) and trust["labels"][1]["near_chance"]


def test_a_labels_boxes_are_drawn_from_where_they_are_precise_enough_to_pay():
    project = boxed_project(images=2, boxed=0)
    label_ids = list(project.labels.order_by("id").values_list("id", flat=True))[:3]
    rng = np.random.default_rng(1)
    fair, wrong = rng.uniform(0, 1, 300), rng.uniform(0, 1, 100)
    fair_right = rng.random(300) < fair**2  # right with probability score²: never 0.9 precise, a third overall
    thresholds, trust = box_trust(
        project_id=project.id,
        label_ids=label_ids,
        names=["fair", "wrong", "unseen"],
        scores=[fair, wrong, np.zeros(0)],
        correct=[fair_right, np.zeros(100, bool), np.zeros(0, bool)],
        truths=[int(fair_right.sum()) + 20, 30, 0],
        ap50=[0.5, 0.0, None],
        labeled_ids=np.zeros(0, np.int64),
    )
    fair_entry, wrong_entry, unseen = trust["labels"]
    assert np.isinf(thresholds[0]) and not fair_entry["confident"]
    assert fair_entry["shown_from"] == precision_threshold(fair_right, fair, SHOW_PRECISION).threshold
    drawn = fair >= fair_entry["shown_from"]
    assert 0.1 < fair_entry["shown_from"] < 0.7 and fair_right[drawn].mean() > SHOW_PRECISION  # precise enough to pay
    assert fair_right.mean() < SHOW_PRECISION  # which drawing every box of it would not be
    # What the cutoff rests on, for the decisions to come to be added to (box_decision_noted).
    assert fair_entry["shown_counts"] == {"predictions": int(drawn.sum()), "correct": int(fair_right[drawn].sum())}
    assert "shown_counts" not in wrong_entry and "shown_counts" not in unseen
    # And at the cutoffs above it, under the confident threshold, for decisions to raise it to.
    steps = fair_entry["shown_steps"]
    assert steps[0] == [fair_entry["shown_from"], *fair_entry["shown_counts"].values()] and 1 < len(steps) <= 48
    assert [c for c, _, _ in steps] == sorted({c for c, _, _ in steps})
    assert all(c < (fair_entry["threshold"] or np.inf) for c, _, _ in steps)
    assert all([n, k] == [int((fair >= c).sum()), int(fair_right[fair >= c].sum())] for c, n, k in steps)
    assert wrong_entry["shown_from"] is None  # never right: never drawn
    assert unseen["shown_from"] == BOX_SHOWN_FROM  # nothing held out to judge it by: the page's floor
    assert list(shown_cutoffs(trust, 3)) == [fair_entry["shown_from"], np.inf, BOX_SHOWN_FROM]
    assert trust["box_note"] is None  # some boxes are drawn: nothing to explain


def test_a_fit_that_draws_no_box_leaves_the_annotate_page_a_line_saying_why():
    project = boxed_project(images=2, boxed=0)
    label_ids = list(project.labels.order_by("id").values_list("id", flat=True))[:2]
    rng = np.random.default_rng(2)
    scores = [rng.uniform(0, 1, 80), rng.uniform(0, 1, 80)]
    _, trust = box_trust(
        project_id=project.id,
        label_ids=label_ids,
        names=["a", "b"],
        scores=scores,
        correct=[rng.random(80) < 0.1, rng.random(80) < 0.1],  # a tenth right at any score
        truths=[30, 30],
        ap50=[0.12, 0.08],
        labeled_ids=np.zeros(0, np.int64),
    )
    assert [e["shown_from"] for e in trust["labels"]] == [None, None]
    assert "No suggested boxes yet" in trust["box_note"] and "AP50 0.10" in trust["box_note"]
