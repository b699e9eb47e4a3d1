"""Agreement measures: pure, no database."""

import math

import pytest

from annotator.agreement import box_f1, in_overlap_sample, iou, tag_jaccard


def test_iou_of_identical_disjoint_touching_and_half_overlapping_boxes():
    assert iou((1, 0, 0, 10, 10), (1, 0, 0, 10, 10)) == 1.0
    assert iou((1, 0, 0, 10, 10), (1, 20, 20, 5, 5)) == 0.0
    assert iou((1, 0, 0, 10, 10), (1, 10, 0, 10, 10)) == 0.0  # sharing an edge is no overlap
    assert math.isclose(iou((1, 0, 0, 10, 10), (1, 5, 0, 10, 10)), 50 / 150)


def test_box_f1_matches_by_label_and_iou_each_box_once():
    a = [(1, 0, 0, 10, 10), (2, 50, 50, 10, 10)]
    assert box_f1(a, a) == 1.0
    assert box_f1(a, [(1, 1, 1, 10, 10)]) == pytest.approx(2 * 1 / 3)  # one of a's two found
    assert box_f1(a, [(2, 0, 0, 10, 10)]) == 0.0  # same place, other label
    assert box_f1([(1, 0, 0, 10, 10)], [(1, 6, 0, 10, 10)]) == 0.0  # IoU 0.25 < 0.5
    assert box_f1([(1, 0, 0, 10, 10)], [(1, 6, 0, 10, 10)], threshold=0.2) == 1.0
    # Two of b's boxes near one of a's: only one may match it.
    assert box_f1([(1, 0, 0, 10, 10)], [(1, 0, 0, 10, 10), (1, 1, 0, 10, 10)]) == pytest.approx(2 / 3)
    assert box_f1([], []) == 1.0 and box_f1(a, []) == 0.0


def test_box_f1_takes_the_best_pairs_first_and_is_symmetric():
    a = [(1, 0, 0, 10, 10), (1, 3, 0, 10, 10)]
    b = [(1, 3, 0, 10, 10), (1, 0.5, 0, 10, 10)]
    assert box_f1(a, b) == 1.0 and box_f1(b, a) == 1.0


def test_tag_jaccard():
    assert tag_jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)
    assert tag_jaccard([], []) == 1.0 and tag_jaccard([1], []) == 0.0 and tag_jaccard([1, 1], {1}) == 1.0


def test_the_overlap_sample_has_about_the_fraction_and_only_grows():
    ids = range(1, 20_001)
    tenth = {i for i in ids if in_overlap_sample(i, 0.1)}
    assert 1900 < len(tenth) < 2100
    assert tenth <= {i for i in ids if in_overlap_sample(i, 0.25)}
    assert not any(in_overlap_sample(i, 0.0) for i in ids) and all(in_overlap_sample(i, 1.0) for i in ids)
