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
    assert report[2] == {
        "label": "rare",
        "trained": False,
        "positives": 2,
        "negatives": 198,
        "reason": "too few positives",
    }
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


def test_a_near_constant_feature_does_not_decide_predictions():
    # The reproduction: one signal column, six noise columns and a column that barely varies
    # on the labeled rows. Unlabeled rows where that column is +-0.3 must follow the signal.
    rng = np.random.default_rng(0)
    n = 200
    signal = rng.normal(size=n)
    x = np.column_stack([signal, rng.normal(size=(n, 6)), 1e-5 * rng.normal(size=n)])
    y = (signal > 0)[:, None]
    probe = fit_probe(x, y)
    rows = np.zeros((4, 8))
    rows[:, 0] = [2.0, 2.0, -2.0, -2.0]
    rows[:, 7] = [-0.3, 0.3, -0.3, 0.3]
    predicted = (probe.predict_proba(rows)[:, 0] >= probe.thresholds[0]).astype(int)
    assert predicted.tolist() == [1, 1, 0, 0]


def test_standardisation_floors_the_scale_relative_to_the_median():
    from labeling.ml.probe import standardisation_scale

    x = np.column_stack([np.arange(10.0), np.arange(10.0) * 2, np.full(10, 3.0), np.arange(10.0) * 1e-6])
    scale = standardisation_scale(x)
    assert scale[0] == x[:, 0].std() and scale[1] == x[:, 1].std()
    floor = 0.01 * np.median([x[:, 0].std(), x[:, 1].std(), x[:, 3].std()])
    assert scale[2] == floor and scale[3] == floor


def test_no_trainable_label_gives_no_nan_and_a_message():
    import json

    from labeling.ml.probe import untrainable_message

    x = np.random.default_rng(0).normal(size=(5, 8))
    probe = fit_probe(x, np.zeros((5, 2), bool))
    assert probe.weight_decay is None
    json.dumps({"weight_decay": probe.weight_decay, "cv_map": probe.cv_map}, allow_nan=False)
    assert untrainable_message(probe, ["cat", "dog"]) == ("not enough labels yet: need 3 of each for cat, dog")
    trained = fit_probe(*_data(100))
    assert untrainable_message(trained, ["a", "b", "c", "d"]) is None


def test_the_learning_curve_rises_with_more_labels():
    from labeling.ml.probe import learning_curve

    x, y = _data(400, d=32)
    curve = learning_curve(x, y[:, :2], weight_decay=0.1, fractions=(0.1, 0.5, 1.0))
    assert [point["labeled"] for point in curve] == [40, 200, 400]
    maps = [point["map"] for point in curve]
    assert all(m is not None for m in maps) and maps[0] < maps[2] and maps[2] > 0.9
    tiny = learning_curve(x[:8], y[:8, :2], weight_decay=0.1, fractions=(0.25,))
    assert tiny[0]["map"] is None  # two rows cannot hold 3 of each
