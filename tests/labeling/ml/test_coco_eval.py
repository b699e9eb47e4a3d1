"""COCO's evaluator on tiny sets whose answer is known by hand."""

import numpy as np
import pytest

from labeling.ml.coco_eval import coco_scores

pytest.importorskip("pycocotools")

SIZES = [(100, 100), (100, 100)]
TRUTH = [np.array([[10, 10, 40, 40]]), np.array([[50, 50, 30, 30], [5, 5, 20, 20]])]
LABELS = [np.array([0]), np.array([0, 1])]


def test_exact_boxes_score_one_and_a_class_without_truth_has_no_ap():
    scores = coco_scores(SIZES, TRUTH, LABELS, TRUTH, [np.ones(1), np.ones(2)], LABELS, classes=3)
    assert scores.ap50 == pytest.approx(1.0) and scores.map == pytest.approx(1.0)
    assert scores.class_ap50[:2] == pytest.approx([1.0, 1.0]) and scores.class_ap50[2] is None
    assert scores.as_dict(["a", "b", "c"])["labels"]["c"] == {"ap50": None, "map": None}


def test_a_loose_box_counts_at_iou_half_but_not_at_the_strict_thresholds():
    # Class 1's box shifted by 4 px: IoU 16*20/(2*400-320) = 0.667, a hit at 0.5 to 0.65 only.
    found = [TRUTH[0], np.array([[50, 50, 30, 30], [9, 5, 20, 20]])]
    scores = coco_scores(SIZES, TRUTH, LABELS, found, [np.ones(1), np.ones(2)], LABELS, classes=2)
    assert scores.class_ap50 == pytest.approx([1.0, 1.0])
    assert scores.class_map[0] == pytest.approx(1.0)
    assert scores.class_map[1] == pytest.approx(4 / 10)  # 0.5, 0.55, 0.6, 0.65 of the 10 thresholds
    assert scores.map == pytest.approx((1.0 + 0.4) / 2)


def test_a_wrong_class_and_no_detections_score_zero():
    wrong = coco_scores(SIZES, TRUTH, LABELS, TRUTH, [np.ones(1), np.ones(2)], [np.array([1]), np.array([1, 0])], 2)
    assert wrong.class_ap50[0] < 1.0
    empty = coco_scores(SIZES, TRUTH, LABELS, [np.zeros((0, 4))] * 2, [np.zeros(0)] * 2, [np.zeros(0)] * 2, 2)
    assert (empty.ap50, empty.map, empty.class_ap50) == (0.0, 0.0, [0.0, 0.0])
