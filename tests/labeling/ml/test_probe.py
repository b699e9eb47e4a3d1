import numpy as np

from labeling.ml.metrics import evaluate
from labeling.ml.probe import ProbeConfig, best_f1_thresholds, fit_probe


def _data(n, seed=0, d=32):
    """Labels that are linear in the features, with a rare label and an absent one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, size=d) + rng.normal(size=d) * 5  # unstandardised
    w = np.random.default_rng(42).normal(size=(d, 4))
    z = ((x - x.mean(0)) / x.std(0)) @ w
    y = z > np.array([np.quantile(z[:, k], q) for k, q in enumerate([0.5, 0.7, 0.97, 0.5])])
    y[:, 3] = False
    return x, y


def test_it_learns_linearly_separable_labels():
    x, y = _data(300)
    probe = fit_probe(x[:200], y[:200])
    m = evaluate(y[200:, :2], probe.predict_proba(x[200:])[:, :2], probe.thresholds[:2])
    assert m.map > 0.9 and m.macro_f1 > 0.8
    assert probe.weight_decay in ProbeConfig().weight_decays and probe.cv_map[probe.weight_decay] is not None


def test_it_reports_labels_with_too_few_examples_instead_of_failing():
    x, y = _data(200)
    y[:, 2] = False
    y[:2, 2] = True  # two positives
    probe = fit_probe(x, y, ProbeConfig(min_examples=3))
    report = probe.label_report(["a", "b", "rare", "absent"])
    assert [r["trained"] for r in report] == [True, True, False, False]
    assert report[2] == {"label": "rare", "trained": False, "positives": 2, "negatives": 198,
                         "reason": "too few positives"}
    probs = probe.predict_proba(x)
    assert np.isfinite(probs).all() and np.isinf(probe.thresholds[2:]).all()
    assert not (probs[:, 2:] >= probe.thresholds[2:]).any()  # never suggested


def test_it_survives_a_set_with_no_trainable_label():
    x = np.random.default_rng(0).normal(size=(5, 8))
    probe = fit_probe(x, np.zeros((5, 3), bool))
    assert not probe.trained.any() and np.isfinite(probe.predict_proba(x)).all()


def test_its_probabilities_stay_calibrated_despite_class_weighting():
    # Uninformative features: the best calibrated answer is the label's base rate.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 4)), rng.random((400, 1)) < 0.1
    probe = fit_probe(x, y, ProbeConfig(weight_decays=(10.0,)))
    assert abs(probe.predict_proba(x).mean() - y.mean()) < 0.03


def test_its_thresholds_maximise_f1():
    y = np.array([[1, 0, 1, 0, 0]]).T.astype(bool)
    s = np.array([[0.9, 0.8, 0.7, 0.2, 0.1]]).T
    assert best_f1_thresholds(y, s).tolist() == [0.7]  # tp 2, fp 1: F1 0.8
