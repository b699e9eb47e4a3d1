"""Label propagation over the k-nearest-neighbour graph of the embeddings (Zhou et al. 2004,
"Learning with local and global consistency"): the labeled images' labels spread to their
neighbours, then to theirs, so the unlabeled images shape the answer too. Pure NumPy.

    scores = propagate(features, labeled_rows, labels, k=10, alpha=0.9)

``scores`` is (N, L) in [0, 1], comparable within a label (a ranking, not a calibrated
probability): per label, the spread positive mass over the spread positive + negative mass.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def knn_graph(features: np.ndarray, *, k: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) neighbour indices and cosine similarities (self excluded), in blocks of rows so the
    full N x N matrix never exists."""
    x = np.asarray(features, dtype=np.float32)
    x = x - x.mean(axis=0)
    x /= np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-8)
    n = len(x)
    k = min(k, n - 1)
    index = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        s = x[start : start + block] @ x.T  # (b, N)
        s[np.arange(len(s)), np.arange(start, start + len(s))] = -np.inf  # not its own neighbour
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        index[start : start + block] = top
        sims[start : start + block] = np.take_along_axis(s, top, axis=1)
    return index, sims


def propagate(
    features: np.ndarray,
    labeled_rows: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = 10,
    alpha: float = 0.9,
    iterations: int = 30,
) -> npt.NDArray[np.float32]:
    """(N, L) scores for every row of ``features`` from the 0/1 ``labels`` (len(labeled_rows), L).

    The graph is the symmetrised kNN graph with weights max(cos, 0)^3 (sharper than raw cosine),
    normalised as D^-1/2 W D^-1/2; positives and negatives are spread separately (F = aSF + (1-a)Y)
    and compared, so a rare label is not drowned by the mass of its negatives.
    """
    n = len(features)
    labels = np.asarray(labels, dtype=np.float32)
    index, sims = knn_graph(features, k=k)
    weight = np.maximum(sims, 0.0) ** 3
    rows = np.repeat(np.arange(n), index.shape[1])
    w = np.zeros((n, n), dtype=np.float32) if n <= 20_000 else None
    if w is None:
        raise ValueError("propagate() builds a dense graph: at most 20,000 rows")
    np.maximum.at(w, (rows, index.ravel()), weight.ravel())
    w = np.maximum(w, w.T)
    d = w.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(d.clip(min=1e-8))
    s = w * inv_sqrt[:, None] * inv_sqrt[None, :]
    y = np.zeros((n, 2 * labels.shape[1]), dtype=np.float32)
    y[labeled_rows, : labels.shape[1]] = labels
    y[labeled_rows, labels.shape[1] :] = 1 - labels
    # Each column normalised to unit mass: positives and negatives of a label weigh the same.
    y /= y.sum(axis=0, keepdims=True).clip(min=1e-8)
    f = y.copy()
    for _ in range(iterations):
        f = alpha * (s @ f) + (1 - alpha) * y
    pos, neg = f[:, : labels.shape[1]], f[:, labels.shape[1] :]
    scores: npt.NDArray[np.float32] = pos / (pos + neg).clip(min=1e-12)
    return scores
