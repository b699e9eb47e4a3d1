import numpy as np

from labeling.ml.calibrate import Platt, cross_fitted, expected_calibration_error, fit_platt


def _overconfident(n=4000, seed=0):
    """True probabilities q; the scores push them far towards 0 and 1 (logit x 3, shifted)."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.05, 0.95, size=(n, 2))
    y = rng.random((n, 2)) < q
    z = np.log(q / (1 - q))
    scores = 1 / (1 + np.exp(-(3 * z + 1)))
    return y, scores


def test_platt_scaling_lowers_the_ece_of_a_miscalibrated_score_set():
    y, scores = _overconfident()
    before = expected_calibration_error(y[2000:], scores[2000:])
    platt = fit_platt(y[:2000], scores[:2000])
    after = expected_calibration_error(y[2000:], platt.apply(scores[2000:]))
    assert before > 0.1 and after < 0.03, (before, after)
    assert np.allclose(platt.a, 1 / 3, atol=0.05) and np.allclose(platt.b, -1 / 3, atol=0.1)


def test_cross_fitting_calibrates_every_row_without_its_own_map():
    y, scores = _overconfident(1000, seed=1)
    calibrated = cross_fitted(y, scores, folds=5)
    assert calibrated.shape == scores.shape
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, scores) / 2


def test_it_keeps_the_ranking_and_leaves_labels_without_both_classes_alone():
    y = np.zeros((50, 2), bool)
    y[:25, 0] = True
    scores = np.random.default_rng(0).random((50, 2))
    platt = fit_platt(y, scores)
    assert platt.a[0] >= 0 and (platt.a[1], platt.b[1]) == (1.0, 0.0)
    out = platt.apply(scores)
    assert np.array_equal(np.argsort(out[:, 1]), np.argsort(scores[:, 1]))
    assert np.allclose(Platt.identity(2).apply(scores), scores, atol=1e-5)


def test_the_ece_of_a_perfectly_calibrated_bin_is_zero_and_of_a_wrong_one_its_gap():
    y = np.array([1, 0, 0, 0, 1, 1, 1, 1, 1, 0], bool)
    p = np.array([0.25] * 4 + [0.75] * 4 + [0.95, 0.95])
    # Bin 2: 0.25 vs 1/4 -> 0; bin 7: 0.75 vs 4/4 -> 0.25 x 4/10; bin 9: 0.95 vs 1/2 -> 0.45 x 2/10.
    assert abs(expected_calibration_error(y, p) - (0.1 + 0.09)) < 1e-9
    assert expected_calibration_error(np.zeros(0), np.zeros(0)) is None
