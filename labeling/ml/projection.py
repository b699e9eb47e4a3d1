"""A 2-D map of the image embeddings for the dashboard: PCA on the standardised features, and
UMAP (umap-learn) beside it, whose clusters separate well enough to lasso.

PCA is linear and deterministic, costs one low-rank SVD (a second on the CPU for 100k x 512),
and keeps the coordinates of existing images meaningful when a few new ones are added. Clusters
in the backbone's feature space show as clusters in the map.
"""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def project_2d(features: np.ndarray | torch.Tensor, *, seed: int = 0, fit_rows: int = 50_000) -> np.ndarray:
    """(N, D) features -> float16 (N, 2) coordinates, each axis scaled to unit variance.

    The components are fitted on at most ``fit_rows`` rows (a seeded sample) and applied to all,
    so a million images cost one pass over the data after a fixed-size fit.
    """
    x = features if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features))
    x = x.float()  # (N, D)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2), dtype=np.float16)
    gen = torch.Generator().manual_seed(seed)
    fit = x[torch.randperm(n, generator=gen)[:fit_rows]] if n > fit_rows else x
    mean, std = fit.mean(0), fit.std(0, unbiased=False).clamp_min(1e-6)
    z = (fit - mean) / std  # (M, D) standardised
    if len(z) < 2:
        return np.zeros((n, 2), dtype=np.float16)
    q = min(2, z.shape[1], len(z))
    with torch.random.fork_rng(devices=[]):  # seeded without disturbing the caller's global RNG
        torch.manual_seed(seed)  # pca_lowrank draws a random test matrix
        _, _, v = torch.pca_lowrank(z, q=q, center=True, niter=4)  # v: (D, q)
    out = torch.zeros(n, 2)
    for start in range(0, n, 65_536):
        chunk = (x[start : start + 65_536] - mean) / std
        out[start : start + len(chunk), :q] = (chunk - z.mean(0)) @ v
    scale = out.std(0, unbiased=False).clamp_min(1e-6)
    # A sign convention (the larger tail positive) so a refit does not mirror the map at random.
    sign = torch.where(out.max(0).values.abs() >= out.min(0).values.abs(), 1.0, -1.0)
    return (out / scale * sign).numpy().astype(np.float16)


def project_umap(
    features: np.ndarray | torch.Tensor, *, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1
) -> np.ndarray:
    """(N, D) features -> float16 (N, 2) UMAP coordinates (cosine metric), each axis scaled to unit
    variance. Slow on a CPU (numba compiles it on first use; minutes for 20,000 rows on 2 cores,
    hence the setting MAP_UMAP_POINTS): the worker computes it once per pretraining."""
    import umap  # imported when used: numba's compilation costs seconds at import

    x = np.asarray(features.float() if isinstance(features, torch.Tensor) else features, dtype=np.float32)
    if len(x) <= n_neighbors + 1:
        return np.zeros((len(x), 2), dtype=np.float16)
    reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine", random_state=seed, n_jobs=1)
    # numba's parallel layer, started by the fit, sets the process's OpenMP threads to every core,
    # and torch's with them: every later training in this worker process then took the web's core
    # too (bench/results/run_sharing.json: a detector fit 1.7x faster after a pretraining's map than
    # on a fresh worker, on 2 threads, not TRAIN_THREADS' 1). The caller's count is put back.
    threads = torch.get_num_threads()
    try:
        xy = np.asarray(reducer.fit_transform(x), dtype=np.float32)
    finally:
        torch.set_num_threads(threads)
    xy = (xy - xy.mean(0)) / np.maximum(xy.std(0), 1e-6)
    out: np.ndarray = xy.astype(np.float16)
    return out
