"""Box suggestions in the queue and the lists: the detector's box doubt joins the image's uncertainty
for "most uncertain first" (the larger of tag and box doubt), and "suggested as <label>" covers
images the detector suggests a confident box of that label on. Rows made with the ORM: nothing is
trained (tests/labeling/test_detection.py trains and checks the rows a real run writes)."""

from __future__ import annotations

import numpy as np
import pytest

from annotator.services.queue import queue_next
from labeling.detection import box_uncertainty_of, merge_box_uncertainty
from labeling.models import BoxSuggestion, ImageUncertainty, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import TrainingRun
from labeling.suggesting import write_suggestions
from tests.factories import add_images, make_project, make_user
from twinlabel.web import compose

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs():
    project = make_project(labels=("cat", "dog"))
    ids = add_images(project, 4)
    cat, dog = project.labels.order_by("order")
    probe = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
    detector = TrainingRun.objects.create(project=project, kind=RunKind.DETECTOR, status=RunStatus.SUCCEEDED)
    return project, ids, cat, dog, probe, detector


def _doubts(run, ids, scores):
    ImageUncertainty.objects.bulk_create(ImageUncertainty(run=run, image_id=i, score=s) for i, s in zip(ids, scores))


def _order(run):
    return list(
        ImageUncertainty.objects.filter(run=run).order_by("-score", "image_id").values_list("image_id", "score")
    )


def test_a_detector_fit_raises_the_probes_uncertainty_to_the_box_doubt_where_larger(runs):
    project, ids, cat, dog, probe, detector = runs
    _doubts(probe, ids, [0.9, 0.1, 0.5, 0.2])
    _doubts(detector, ids[:3], [0.3, 0.8, 0.5])  # the last image: no box doubt at all
    assert merge_box_uncertainty(target_run_id=probe.id, detector_run_id=detector.id) == 1
    assert _order(probe) == [(ids[0], 0.9), (ids[1], 0.8), (ids[2], 0.5), (ids[3], 0.2)]
    # The queue's "most uncertain first" follows: the second image, boxed in doubt, comes next.
    ProjectModelState.objects.create(project=project, probe_run=probe, detector_run=detector)
    owner = project.created_by
    assert queue_next(project=project, user=owner, order="uncertain").id == ids[0]
    assert queue_next(project=project, user=make_user("b"), order="uncertain").id == ids[1]


def test_a_probe_fit_takes_the_current_detectors_box_doubt_into_its_rows(runs):
    project, ids, cat, dog, probe, detector = runs
    ProjectModelState.objects.create(project=project, detector_run=detector)
    _doubts(detector, ids[:2], [0.7, 0.05])
    assert box_uncertainty_of(project_id=project.id, ids=np.array(ids)).tolist() == [0.7, 0.05, 0.0, 0.0]
    write_suggestions(
        run_id=probe.id,
        pool=np.array(ids),
        label_ids=np.array([cat.id, dog.id]),
        probs=np.full((4, 2), 0.3, np.float32),
        thresholds=np.array([0.9, 0.9]),
        trained=np.array([True, True]),
        scores=np.array([0.2, 0.2, 0.4, 0.1]),
    )
    assert dict(ImageUncertainty.objects.filter(run=probe).values_list("image_id", "score")) == pytest.approx(
        {ids[0]: 0.7, ids[1]: 0.2, ids[2]: 0.4, ids[3]: 0.1}
    )


def test_with_a_detector_and_no_probe_the_queue_orders_by_box_doubt(runs):
    project, ids, cat, dog, probe, detector = runs
    ProjectModelState.objects.create(project=project, detector_run=detector)
    _doubts(detector, ids, [0.1, 0.2, 0.9, 0.3])
    assert queue_next(project=project, user=project.created_by, order="uncertain").id == ids[2]


def test_suggested_as_a_label_covers_confident_boxes_likeliest_first(runs):
    project, ids, cat, dog, probe, detector = runs
    ProjectModelState.objects.create(project=project, probe_run=probe, detector_run=detector)
    Suggestion.objects.create(run=probe, image_id=ids[0], label=dog, probability=0.8, predicted=True)
    Suggestion.objects.create(run=probe, image_id=ids[2], label=dog, probability=0.7, predicted=True)
    box = dict(run=detector, label=dog, x=1, y=1, w=5, h=5)
    BoxSuggestion.objects.create(image_id=ids[1], score=0.95, predicted=True, **box)  # a box only
    BoxSuggestion.objects.create(image_id=ids[2], score=0.9, predicted=True, **box)  # both: the box's 0.9
    BoxSuggestion.objects.create(image_id=ids[3], score=0.99, predicted=False, **box)  # not confident
    BoxSuggestion.objects.create(image_id=ids[3], score=0.99, predicted=True, **{**box, "label": cat})
    page = compose.image_list(project_id=project.id, suggested_label=dog.id, order="id")
    assert [r["id"] for r in page.rows] == ids[:3]
    users = [project.created_by, make_user("b"), make_user("c"), make_user("d")]
    served = [queue_next(project=project, user=u, order=f"label:{dog.id}") for u in users]
    assert [i.id if i else None for i in served[:3]] == [ids[1], ids[2], ids[0]]
    assert served[3] is None or served[3].id == ids[3]  # after the ranked ones: the queue's fallback, if any


def test_suggested_as_a_label_with_a_detector_only(runs):
    project, ids, cat, dog, probe, detector = runs
    ProjectModelState.objects.create(project=project, detector_run=detector)
    BoxSuggestion.objects.create(
        run=detector, image_id=ids[3], label=cat, x=1, y=1, w=5, h=5, score=0.6, predicted=True
    )
    page = compose.image_list(project_id=project.id, suggested_label=cat.id, order="id")
    assert [r["id"] for r in page.rows] == [ids[3]]
    assert queue_next(project=project, user=project.created_by, order=f"label:{cat.id}").id == ids[3]
