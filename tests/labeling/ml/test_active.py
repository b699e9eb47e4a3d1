import numpy as np

from labeling.ml.active import most_uncertain_first, uncertainty


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
