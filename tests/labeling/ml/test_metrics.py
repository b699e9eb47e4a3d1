import numpy as np
import pytest

from labeling.ml.metrics import choose_scorer, evaluate


def reference_ap(y, s):
    """scikit-learn's average_precision_score, written out: Σ (R_k - R_{k-1}) P_k over the
    distinct thresholds, from the highest down."""
    positives = y.sum()
    ap, last_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        predicted = s >= t
        tp = (predicted & y).sum()
        recall, precision = tp / positives, tp / predicted.sum()
        ap += (recall - last_recall) * precision
        last_recall = recall
    return ap


def reference_f1(y, p):
    tp, fp, fn = (p & y).sum(), (p & ~y).sum(), (~p & y).sum()
    return 0.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def test_it_agrees_with_straightforward_definitions_on_random_data_with_ties():
    rng = np.random.default_rng(0)
    y = rng.random((60, 5)) < [0.5, 0.3, 0.1, 0.05, 0.0]
    scores = np.round(rng.random((60, 5)) * 0.5 + 0.5 * y, 1)  # rounding makes ties
    thresholds = np.array([0.5, 0.4, 0.6, 0.3, 0.5])
    m = evaluate(y, scores, thresholds)
    preds = scores >= thresholds
    for k in range(5):
        if y[:, k].any():
            assert m.ap[k] == pytest.approx(reference_ap(y[:, k], scores[:, k]))
        else:
            assert m.ap[k] is None
        assert m.f1[k] == pytest.approx(reference_f1(y[:, k], preds[:, k]))
    assert m.map == pytest.approx(np.mean([a for a in m.ap if a is not None]))
    assert m.micro_f1 == pytest.approx(reference_f1(y.ravel(), preds.ravel()))
    assert m.macro_f1 == pytest.approx(np.mean([reference_f1(y[:, k], preds[:, k]) for k in range(5)]))
    assert m.support == y.sum(axis=0).tolist()


def test_it_matches_scikit_learns_documented_examples():
    # average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8333... (sklearn docs)
    m = evaluate(np.array([[0, 0, 1, 1]]).T, np.array([[0.1, 0.4, 0.35, 0.8]]).T, np.array([0.3]))
    assert m.ap[0] == pytest.approx(0.83333333)
    # f1_score([0, 1, 1, 0], [0, 1, 0, 0]) == 2/3: tp 1, fn 1, fp 0
    m = evaluate(np.array([[0, 1, 1, 0]]).T, np.array([[0.0, 1.0, 0.0, 0.0]]).T, np.array([0.5]))
    assert m.f1[0] == pytest.approx(2 / 3)


def test_it_never_returns_nan():
    m = evaluate(np.zeros((4, 2), bool), np.full((4, 2), 0.5), np.array([np.inf, 0.5]))
    assert m.ap == [None, None] and m.map is None
    assert m.f1 == [0.0, 0.0] and m.micro_f1 == 0.0 and m.macro_f1 == 0.0


def test_it_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        evaluate(np.zeros((4, 2)), np.zeros((4, 3)), np.zeros(2))


def test_the_network_is_chosen_when_it_beats_the_frozen_probe_else_the_average():
    assert choose_scorer({"features": 0.4, "finetuned": 0.5, "ensemble": 0.55}) == "finetuned"
    assert choose_scorer({"features": 0.4, "finetuned": 0.38, "ensemble": 0.41}) == "ensemble"
    # The average replaces the frozen probe even when it is not ahead out-of-fold (measured on
    # held-out scenes, not here: bench/finetune_scorer.py).
    assert choose_scorer({"features": 0.4, "finetuned": 0.4, "ensemble": 0.39}) == "ensemble"
    assert choose_scorer({"features": None, "finetuned": 0.2, "ensemble": 0.3}) == "finetuned"
    assert choose_scorer({"features": 0.2, "finetuned": None, "ensemble": None}) == "features"
    assert choose_scorer({"features": 0.2, "finetuned": 0.1, "ensemble": None}) == "features"
