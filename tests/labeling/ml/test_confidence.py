import math

import numpy as np
import pytest

from labeling.ml.confidence import label_lift, near_chance, precision_steps, precision_threshold, still_learning
from labeling.ml.confidence import wilson_lower


def _wilson_reference(k, n, z=1.6448536):
    # Wilson (1927), the lower end of the score interval, written out as in Agresti & Coull (1998).
    p = k / n
    return (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


def test_the_wilson_bound_matches_the_reference_formula():
    for k, n in [(9, 10), (90, 100), (5, 5), (0, 7), (333, 400)]:
        assert wilson_lower(k, n) == pytest.approx(_wilson_reference(k, n), abs=1e-6)
    assert wilson_lower(9, 10) == pytest.approx(0.6523, abs=1e-4)  # below the point estimate 0.9
    assert wilson_lower(0, 0) == 0.0


def test_the_threshold_is_the_lowest_cutoff_whose_bound_meets_the_target():
    # 60 rows scored 0.99..0.40: the top 40 are all positive, then alternating.
    s = np.linspace(0.99, 0.40, 60)
    y = np.ones(60, bool)
    y[40::2] = False
    result = precision_threshold(y, s, 0.9)
    assert result.confident
    k = int(np.sum(s >= result.threshold))
    tp = int(y[s >= result.threshold].sum())
    assert wilson_lower(tp, k) >= 0.9
    lower = s[k] if k < 60 else None  # the next cutoff down must miss the target
    assert lower is None or wilson_lower(int(y[s >= lower].sum()), k + 1) < 0.9
    assert result.oof_coverage == pytest.approx(k / 60)


def test_a_label_that_never_reaches_the_target_is_not_confident():
    rng = np.random.default_rng(0)
    y, s = rng.random(100) < 0.3, rng.random(100)  # scores unrelated to truth
    result = precision_threshold(y, s, 0.9)
    assert not result.confident and result.threshold == float("inf")
    assert result.to_dict()["threshold"] is None and result.oof_coverage == 0.0


def test_few_perfect_predictions_are_not_enough_for_a_high_target():
    # 5 of 5 correct: precision 1.0, but its lower bound (0.649) is short of 0.9.
    y, s = np.array([1, 1, 1, 1, 1, 0, 0], bool), np.array([0.9, 0.85, 0.8, 0.7, 0.6, 0.2, 0.1])
    assert not precision_threshold(y, s, 0.9).confident
    assert precision_threshold(y, s, 0.6).confident


def test_decisions_count_as_measurements_above_where_they_were_shown():
    y, s = np.array([1, 1, 1, 1, 1, 0, 0], bool), np.array([0.9, 0.85, 0.8, 0.7, 0.6, 0.2, 0.1])
    # 30 accepted suggestions shown at 0.65 and above lift the bound over 0.9...
    accepted = precision_threshold(y, s, 0.9, decided=np.full(30, 0.8), accepted=np.ones(30, bool), shown_from=0.65)
    assert accepted.confident and accepted.threshold >= 0.65 and accepted.predictions > 30
    # ...rejected ones sink it, and the same decisions do not count below where they were shown.
    rejected = precision_threshold(y, s, 0.5, decided=np.full(30, 0.8), accepted=np.zeros(30, bool), shown_from=0.65)
    assert rejected.confident and rejected.threshold < 0.65
    assert rejected.predictions == int((s >= rejected.threshold).sum())


def test_the_steps_are_the_pooled_counts_the_threshold_is_judged_by_at_each_cutoff():
    y, s = np.array([1, 1, 0, 1, 0, 0], bool), np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    decided, accepted = np.array([0.85, 0.55]), np.array([False, True])
    steps = precision_steps(y, s, start=0.5, stop=0.9, decided=decided, accepted=accepted, shown_from=0.6)
    # Every distinct score (held out or decided) from 0.5 up, under 0.9; decisions only from 0.6 up.
    assert steps == [[0.5, 5, 3], [0.55, 4, 3], [0.6, 5, 3], [0.7, 4, 2], [0.8, 3, 2], [0.85, 2, 1]]
    # The threshold's own counts are the step at it.
    t = precision_threshold(y, s, 0.3, decided=decided, accepted=accepted, shown_from=0.6)
    assert t.confident and [t.threshold, t.predictions, round(t.precision * t.predictions)] in steps
    # At most ``most``, spread over the candidates, the lowest (start) kept.
    many = np.linspace(0.01, 0.99, 500)
    few = precision_steps(many > 0.5, many, start=0.2, most=10)
    assert len(few) == 10 and few[0][0] == pytest.approx(many[many >= 0.2][0]) and few[-1][0] == many[-1]


def test_near_chance_is_a_lift_below_a_fifth_and_the_model_abstains_then():
    y = np.array([1, 0, 0, 0], bool)
    assert label_lift(y, 0.25) == pytest.approx(0.0) and near_chance(label_lift(y, 0.3))
    assert not near_chance(label_lift(y, 0.9)) and near_chance(None)
    labels = [
        {"label": "square", "trained": True, "positives": 12, "near_chance": True},
        {"label": "star", "trained": False, "positives": 1, "near_chance": True},
    ]
    assert still_learning(labels) == "the model is still learning: 2 more labels of star would help"
    labels[0]["near_chance"] = False
    assert still_learning(labels) is None
