import numpy as np

from labeling.ml.propagate import knn_graph, propagate


def _two_clusters(n=40, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[5.0, 0, 0, 0], [0, 5.0, 0, 0]])
    side = np.repeat([0, 1], n // 2)
    return centres[side] + rng.normal(0, 0.5, (n, 4)), side


def test_the_knn_graph_never_links_a_point_to_itself():
    x, _ = _two_clusters()
    index, sims = knn_graph(x, k=5, block=7)  # blocks smaller than N: the self-exclusion per block
    assert index.shape == (40, 5) and not (index == np.arange(40)[:, None]).any()
    assert (sims <= 1.0 + 1e-5).all()


def test_labels_spread_along_the_graph_to_the_unlabeled_points():
    x, side = _two_clusters()
    labeled = np.array([0, 1, 20, 21])  # two of each cluster
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)  # label A in cluster 0, B in cluster 1
    scores = propagate(x, labeled, y, k=5)
    assert scores.shape == (40, 2)
    assert (scores[side == 0, 0] > 0.5).all() and (scores[side == 1, 0] < 0.5).all()
    assert (scores[side == 1, 1] > 0.5).all()


def test_without_structure_it_does_not_invent_any():
    # A label given to both clusters alike: no point is pushed to either extreme by the graph.
    x, _ = _two_clusters()
    labeled = np.array([0, 1, 20, 21])
    y = np.array([[1], [0], [1], [0]], dtype=np.float32)
    scores = propagate(x, labeled, y, k=5)[np.setdiff1d(np.arange(40), labeled)]
    assert 0.2 < scores.mean() < 0.8
