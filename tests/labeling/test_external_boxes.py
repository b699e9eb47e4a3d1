"""External box predictions: judged on the submitted images against their boxes by the detector's
own threshold code, stored as the external run's box suggestions, swapped in as the current ones
(the annotate page shows them; accepting one makes a Box with source "model"), replaced by the next
detector fit."""

import json

import pytest
from django.urls import reverse

from annotator.models import Box
from annotator.services.annotations import BoxIn, ImageAnnotations, annotations_import
from labeling.detection import box_suggestions_swap
from labeling.models import BoxSuggestion, ProjectModelState, RunKind, RunStatus, TrainingRun
from labeling.runs import current_detector_run_id, current_probe_run_id

pytestmark = pytest.mark.team(images=30)

SUBMITTED = 20
TRUTH = [10, 10, 40, 30]  # the dog box on every submitted image (images are 100 x 80)
STRAY = [60, 50, 30, 20]  # where the model also "sees" a dog, never boxed by anyone


@pytest.fixture
def boxed(team):
    annotations_import(
        project=team.project,
        user=team.owner,
        items=[ImageAnnotations(i, boxes=(BoxIn(team.dog.id, *TRUTH),)) for i in team.ids[:SUBMITTED]],
    )
    return team


def _coco(team):
    """Every image: the true box at 0.9, a stray one at 0.3 (COCO category 2 is the second label, dog)."""
    results = []
    for i in team.ids:
        results.append({"image_id": i, "category_id": 2, "bbox": TRUTH, "score": 0.9})
        results.append({"image_id": i, "category_id": 2, "bbox": STRAY, "score": 0.3})
    return json.dumps(results).encode()


def _post(client, team, data):
    import io

    client.force_login(team.owner)
    url = reverse("api_project_predictions", args=[team.project.id])
    return client.post(url, {"format": "coco", "model_version": "yolo-x", "files": [io.BytesIO(data)]})


def test_coco_boxes_become_the_current_box_suggestions_with_the_detectors_thresholds(client, boxed):
    ProjectModelState.objects.create(project=boxed.project, precision_target=0.8)
    response = _post(client, boxed, _coco(boxed))
    assert response.status_code == 201, response.content
    report = response.json()
    run = TrainingRun.objects.get(pk=report["run_id"])
    assert run.kind == RunKind.EXTERNAL and current_detector_run_id(project_id=boxed.project.id) == run.id
    # Boxes only: the tag suggestions are not replaced by an empty run.
    assert current_probe_run_id(project_id=boxed.project.id) is None
    assert report["boxes_evaluated_images"] == SUBMITTED and report["boxes_stored"] == 2 * (30 - SUBMITTED)
    # Judged as the detector's held-out detections: 20 of 20 right at 0.9 (Wilson bound 0.84 >= 0.8),
    # 20 wrong at 0.3; AP50 1.0; the threshold keeps the true boxes and leaves the stray ones unticked.
    dog = run.metrics["boxes"]["trust"]["labels"][0]
    assert dog["label_id"] == boxed.dog.id and dog["threshold"] == pytest.approx(0.9)
    assert run.metrics["boxes"]["map50"] == pytest.approx(1.0)
    rows = BoxSuggestion.objects.filter(run=run)
    assert set(rows.values_list("image_id", flat=True)) == set(boxed.ids[SUBMITTED:])
    assert {(round(r.score, 3), r.predicted) for r in rows} == {(0.9, True), (0.3, False)}
    assert report["boxes_confident"] == 30 - SUBMITTED


def test_with_the_default_target_the_same_evidence_is_not_enough_to_pre_tick(client, boxed):
    report = _post(client, boxed, _coco(boxed)).json()
    assert report["boxes_stored"] == 20 and report["boxes_confident"] == 0  # 0.84 < 0.9
    assert not BoxSuggestion.objects.filter(run_id=report["run_id"], predicted=True).exists()


def test_the_annotate_state_shows_them_and_accepting_one_makes_a_model_box(client, boxed):
    report = _post(client, boxed, _coco(boxed)).json()
    image_id = boxed.ids[SUBMITTED]
    client.force_login(boxed.annotator)
    state = client.get(reverse("api_image_annotations", args=[image_id])).json()
    shown = state["box_suggestions"]
    assert [(s["label"], s["x"], s["y"], s["w"], s["h"]) for s in shown] == [
        (boxed.dog.id, *map(float, TRUTH)),
        (boxed.dog.id, *map(float, STRAY)),
    ]
    decided = client.post(
        reverse("api_box_suggestion_decide", args=[image_id, shown[0]["id"], "accept"]),
        "{}",
        content_type="application/json",
    )
    assert decided.status_code == 200, decided.content
    box = Box.objects.get(image_id=image_id)
    assert box.source == "model" and box.label_id == boxed.dog.id and [box.x, box.y, box.w, box.h] == TRUTH
    assert BoxSuggestion.objects.filter(run_id=report["run_id"]).exists()


def test_boxes_overhanging_by_a_pixel_are_clipped_to_the_image(team):
    from labeling.external import predictions_import

    doc = {
        "model_version": "m",
        "predictions": [
            {"image_id": team.ids[0], "boxes": [{"label": "cat", "bbox": [-0.5, 50, 100.8, 30.5], "score": 1}]}
        ],
    }
    predictions_import(project=team.project, user=team.owner, fmt="json", files=[("p.json", json.dumps(doc).encode())])
    row = BoxSuggestion.objects.get()
    assert (row.x, row.y, row.w, row.h) == (0.0, 50.0, 100.0, 30.0)


def test_a_later_detector_fit_replaces_them_and_removes_their_rows(client, boxed):
    report = _post(client, boxed, _coco(boxed)).json()
    detector = TrainingRun.objects.create(project=boxed.project, kind=RunKind.DETECTOR, status=RunStatus.SUCCEEDED)
    box_suggestions_swap(run=detector)
    assert current_detector_run_id(project_id=boxed.project.id) == detector.id
    assert not BoxSuggestion.objects.filter(run_id=report["run_id"]).exists()


def test_a_running_detector_keeps_its_rows_when_an_import_is_swapped_in(client, boxed):
    running = TrainingRun.objects.create(project=boxed.project, kind=RunKind.DETECTOR, status=RunStatus.RUNNING)
    BoxSuggestion.objects.create(
        run=running, image_id=boxed.ids[-1], label=boxed.dog, x=1, y=1, w=5, h=5, score=0.5, predicted=False
    )
    _post(client, boxed, _coco(boxed))
    assert BoxSuggestion.objects.filter(run=running).count() == 1
