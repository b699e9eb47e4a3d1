"""The one place BoxSuggestion rows are built from detections, for our detector's runs and external
imports alike (labeling.detection.box_suggestion_rows): clipping, tiny boxes, score clamping and the
confident flag by the label's threshold. Unsaved rows: no database."""

from __future__ import annotations

import numpy as np

from labeling.detection import box_suggestion_rows
from labeling.ml.detector import Detections
from labeling.models import TrainingRun


def _found(boxes, scores, labels) -> Detections:
    return Detections(
        boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        scores=np.array(scores, dtype=np.float32),
        labels=np.array(labels, dtype=np.int64),
    )


def _rows(found, size=None, thresholds=(0.5, np.inf)):
    rows = box_suggestion_rows(
        run=TrainingRun(), image_id=7, found=found, classes=[11, 22], thresholds=np.array(thresholds), size=size
    )
    return [(r.image_id, r.label_id, r.x, r.y, r.w, r.h, round(r.score, 3), r.predicted) for r in rows]


def test_it_maps_class_indices_to_label_ids_and_marks_confident_at_the_threshold():
    found = _found([[1, 2, 30, 40], [5, 5, 10, 10], [0, 0, 8, 8]], [0.5, 0.49, 0.99], [0, 0, 1])
    assert _rows(found) == [
        (7, 11, 1, 2, 30, 40, 0.5, True),  # at the threshold: confident
        (7, 11, 5, 5, 10, 10, 0.49, False),
        (7, 22, 0, 0, 8, 8, 0.99, False),  # its label is not confident at any score
    ]


def test_it_clips_to_the_image_when_its_size_is_given_and_drops_boxes_under_a_pixel():
    found = _found([[-10, -5, 30, 20], [95, 70, 20, 20], [99.5, 10, 5, 5], [10, 10, 0.5, 30]], [0.9] * 4, [0] * 4)
    assert _rows(found, size=(100, 80)) == [
        (7, 11, 0, 0, 20, 15, 0.9, True),
        (7, 11, 95, 70, 5, 10, 0.9, True),
    ]  # the third lies 0.5 px inside the image after clipping, the fourth is half a pixel wide
    assert len(_rows(found)) == 3  # without the size nothing is clipped: only the narrow one goes


def test_scores_outside_0_1_are_clamped():
    found = _found([[0, 0, 10, 10], [0, 0, 10, 10]], [1.2, -0.1], [0, 0])
    assert [row[6] for row in _rows(found)] == [1.0, 0.0]


def _shown(found, shown_from, thresholds=(0.5, np.inf)):
    rows = box_suggestion_rows(
        run=TrainingRun(),
        image_id=7,
        found=found,
        classes=[11, 22],
        thresholds=np.array(thresholds),
        shown_from=np.array(shown_from, dtype=np.float64),
    )
    return [(r.label_id, round(r.score, 2), r.predicted, r.shown) for r in rows]


def test_a_box_is_shown_from_its_labels_cutoff_and_never_where_the_label_has_none():
    found = _found(
        [[0, 0, 10, 10], [50, 50, 10, 10], [20, 20, 5, 5], [70, 0, 9, 9]], [0.6, 0.39, 0.95, 0.4], [1, 1, 1, 0]
    )
    assert _shown(found, [np.inf, 0.4]) == [
        (22, 0.6, False, True),
        (22, 0.39, False, False),  # under its label's cutoff
        (22, 0.95, False, True),
        (11, 0.4, False, False),  # its label is not worth drawing at any score, and not confident here
    ]
    assert _shown(found, [np.inf, 0.4], thresholds=(0.3, np.inf))[3] == (
        11,
        0.4,
        True,
        False,
    )  # confident: drawn anyway


def test_a_near_copy_of_a_better_shown_box_is_not_shown_under_any_label():
    found = _found(
        [[10, 10, 40, 40], [11, 10, 40, 41], [12, 12, 40, 40], [30, 30, 40, 40], [200, 200, 8, 8]],
        [0.9, 0.8, 0.7, 0.6, 0.5],
        [1, 0, 1, 0, 0],
    )
    rows = _shown(found, [0.0, 0.0], thresholds=(0.75, np.inf))
    assert rows == [
        (22, 0.9, False, True),
        (11, 0.8, True, True),  # confident: a copy of the better box, but drawn and pre-ticked anyway
        (22, 0.7, False, False),  # the same object again (IoU > 0.7 with the first)
        (11, 0.6, False, True),  # overlaps, but by IoU 0.14: another object
        (11, 0.5, False, True),
    ]
