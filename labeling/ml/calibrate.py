"""Calibrated probabilities: Platt scaling per label, fitted on out-of-fold scores, and the
expected calibration error (ECE) that says how far a shown percentage is from the truth.

Platt scaling maps a score s to sigmoid(a * logit(s) + b), one (a, b) per label, fitted by
Newton's method on the out-of-fold scores with Platt's smoothed targets ((P+1)/(P+2) for
positives, 1/(N+2) for negatives) so that a small, separable set does not drive a to infinity.
``a`` is kept >= 0: a calibration never reverses the ranking the probe learned.

The ECE reported for a run is measured on held-out rows: ``cross_fitted`` calibrates each fold of
the out-of-fold scores with a map fitted on the other folds, so no probability is judged by the
map that was fitted to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Platt:
    a: np.ndarray  # (L,) slope on the score's logit; 1, 0 is the identity
    b: np.ndarray  # (L,)

    @classmethod
    def identity(cls, labels: int) -> "Platt":
        return cls(np.ones(labels), np.zeros(labels))

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """(N, L) probabilities -> (N, L) calibrated float32 probabilities."""
        z = _logit(np.asarray(scores, dtype=np.float64))
        return _sigmoid(self.a * z + self.b).astype(np.float32)


def fit_platt(y: np.ndarray, scores: np.ndarray, iterations: int = 50) -> Platt:
    """Per label (a, b) from (N, L) truths and (N, L) scores; the identity for a label with no
    positive or no negative (nothing to calibrate against)."""
    y, s = np.asarray(y).astype(bool), np.asarray(scores, dtype=np.float64)
    a, b = np.ones(y.shape[1]), np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        pos = int(y[:, j].sum())
        if pos == 0 or pos == len(y):
            continue
        target = np.where(y[:, j], (pos + 1) / (pos + 2), 1 / (len(y) - pos + 2))
        a[j], b[j] = _newton(_logit(s[:, j]), target, iterations)
    return Platt(a, b)


def _newton(z: np.ndarray, t: np.ndarray, iterations: int) -> tuple[float, float]:
    """Logistic regression of t on z (one feature + intercept): Newton steps, halved until the
    loss falls (a full step from far away can overshoot), with a tiny ridge for stability."""
    features = np.stack([z, np.ones_like(z)], axis=1)

    def loss(theta: np.ndarray) -> float:
        u = features @ theta
        return float(np.sum(np.logaddexp(0, u) - t * u) + 0.5e-6 * theta @ theta)

    theta = np.array([1.0, 0.0])
    current = loss(theta)
    for _ in range(iterations):
        p = _sigmoid(features @ theta)
        gradient = features.T @ (p - t) + 1e-6 * theta
        hessian = (features * (p * (1 - p))[:, None]).T @ features + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-4 and loss(theta - scale * step) > current:
            scale /= 2
        theta = theta - scale * step
        previous, current = current, loss(theta)
        if previous - current < 1e-10 * max(1.0, abs(current)):
            break
    if theta[0] < 0:  # an inverted fit means no signal: keep the ranking, flatten to the base rate
        theta = np.array([0.0, float(_logit(np.clip(np.array(t.mean()), 1e-6, 1 - 1e-6)))])
    return float(theta[0]), float(theta[1])


def cross_fitted(y: np.ndarray, scores: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """(N, L) calibrated scores where each row's map was fitted without it (for an honest ECE
    and honest thresholds)."""
    y, s = np.asarray(y).astype(bool), np.asarray(scores, dtype=np.float64)
    k = max(2, min(folds, len(y)))
    parts = np.array_split(np.random.default_rng(seed).permutation(len(y)), k)
    out = np.empty(s.shape, dtype=np.float32)
    for part in parts:
        rest = np.setdiff1d(np.arange(len(y)), part)
        out[part] = fit_platt(y[rest], s[rest]).apply(s[part])
    return out


def expected_calibration_error(y: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float | None:
    """Pooled over every (image, label) pair: sum over equal-width probability bins of
    (share of pairs in the bin) x |mean probability - share positive|. None for no pairs."""
    y = np.asarray(y).astype(bool).reshape(-1)
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if len(p) == 0:
        return None
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, weights=p, minlength=bins) - np.bincount(which, weights=y, minlength=bins))
    return float(gap.sum() / count.sum())


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))
