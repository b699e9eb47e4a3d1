import numpy as np

from labeling.ml.projection import project_2d


def test_it_maps_features_to_two_standardised_float16_axes():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 32)).astype(np.float16)
    xy = project_2d(features)
    assert xy.shape == (300, 2) and xy.dtype == np.float16
    assert np.allclose(xy.astype(np.float32).std(0), 1, atol=0.02)


def test_it_separates_clusters_along_the_first_axis():
    rng = np.random.default_rng(1)
    centres = np.zeros((2, 64), dtype=np.float32)
    centres[1, :8] = 6.0  # two clusters apart in 8 of 64 dimensions
    features = np.concatenate([c + rng.normal(size=(100, 64)) for c in centres]).astype(np.float32)
    x = project_2d(features)[:, 0].astype(np.float32)
    assert abs(x[:100].mean() - x[100:].mean()) > 1.5  # in units of the axis's standard deviation


def test_it_is_deterministic_and_handles_tiny_inputs():
    features = np.random.default_rng(2).normal(size=(50, 16))
    assert np.array_equal(project_2d(features), project_2d(features))
    assert project_2d(np.zeros((0, 16))).shape == (0, 2)
    assert project_2d(np.ones((1, 16))).shape == (1, 2)


def test_fitting_on_a_sample_projects_every_row():
    features = np.random.default_rng(3).normal(size=(500, 16))
    assert project_2d(features, fit_rows=100).shape == (500, 2)
