import numpy as np
import pytest

from labeling.ml.active import box_uncertainty, most_uncertain_first, uncertainty


def test_it_scores_one_at_the_threshold_and_zero_at_certainty():
    probs = np.array([[0.2], [0.0], [1.0], [0.6]])
    scores = uncertainty(probs, np.array([0.2]))
    assert scores.tolist() == [1.0, 0.0, 0.0, 0.5]


def test_it_takes_the_most_doubtful_label_and_ignores_labels_without_a_model():
    probs = np.array([[0.01, 0.5, 0.5], [0.5, 0.99, 0.5]])
    scores = uncertainty(probs, np.array([0.5, 0.5, np.inf]))
    assert scores[0] == 1.0 and scores[1] == 1.0
    assert uncertainty(probs, np.array([np.inf] * 3)).tolist() == [0.0, 0.0]


def test_it_orders_ids_from_most_to_least_uncertain():
    ids = np.array([7, 8, 9])
    probs = np.array([[0.99], [0.5], [0.7]])
    assert most_uncertain_first(ids, probs).tolist() == [8, 9, 7]


def test_box_uncertainty_is_the_closest_detection_to_its_labels_threshold():
    thresholds = np.array([0.8, np.inf])
    # label 0 at its threshold 0.8: 1; label 1 has none, so 0.5 is its line: 0.75 is 0.5 of the way.
    assert box_uncertainty(np.array([0.8]), np.array([0]), thresholds) == pytest.approx(1.0)
    assert box_uncertainty(np.array([0.75]), np.array([1]), thresholds) == pytest.approx(0.5)
    assert box_uncertainty(np.array([0.99, 0.4]), np.array([0, 0]), thresholds) == pytest.approx(0.5)
    assert box_uncertainty(np.array([1.0, 0.0]), np.array([0, 1]), thresholds) == 0.0
    assert box_uncertainty(np.zeros(0), np.zeros(0, np.int64), thresholds) == 0.0
