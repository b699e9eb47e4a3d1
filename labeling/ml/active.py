"""An uncertainty score per image, to put the most informative images first.

Choice: closeness to each label's own decision threshold, and the maximum over labels.
- Relative to the threshold rather than to 0.5: a rare label's F1-optimal threshold may be
  0.1, and p = 0.1 is exactly where the probe cannot decide, while p = 0.5 is a confident yes.
- Scaled by the room on that side (t below, 1 - t above), so the score is in [0, 1]: 1 at
  the threshold, 0 at p = 0 or p = 1, comparable across labels.
- The maximum, not the mean: a person settles every label of an image at once, so an image
  is worth their time when any one label is in doubt; a mean would bury that label under the
  many labels that are certainly absent.
Labels without a model (threshold +inf) do not count.

Boxes (``box_uncertainty``): the same closeness, per detection, to its label's confident threshold.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def uncertainty(probs: np.ndarray, thresholds: np.ndarray | None = None) -> npt.NDArray[np.float64]:
    """(N, L) probabilities and (L,) thresholds (default 0.5) -> (N,) scores in [0, 1]."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"expected (N, L) probabilities, got {probs.shape}")
    t = np.full(probs.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    usable = np.isfinite(t)
    if not usable.any() or len(probs) == 0:
        return np.zeros(len(probs))
    scores: npt.NDArray[np.float64] = closeness(probs[:, usable], t[usable]).max(axis=1)
    return scores


def closeness(p: np.ndarray, t: np.ndarray) -> npt.NDArray[np.float64]:
    """Elementwise: 1 at the threshold ``t``, falling linearly to 0 at p = 0 and p = 1."""
    p, t = np.asarray(p, dtype=np.float64), np.clip(np.asarray(t, dtype=np.float64), 1e-6, 1 - 1e-6)
    room = np.where(p < t, t, 1 - t)
    out: npt.NDArray[np.float64] = (1 - np.abs(p - t) / room).clip(0, 1)
    return out


def box_uncertainty(scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> float:
    """An image's doubt from its detections: the closeness of each detection's score to its label's
    confident threshold (0.5 for a label with none: +inf), the maximum over the detections, 0 with
    none. The same rule as ``uncertainty`` for tags, so the two are comparable and the queue takes
    the larger: the threshold is where a box flips between pre-accepted and only ranked, which is
    where a person's answer teaches the detector most; the maximum because one doubtful box is
    enough to make the image worth a person's look. An image the detector finds nothing on scores
    0: the score threshold already dropped every weak candidate, so there is nothing it hesitates on."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not len(scores):
        return 0.0
    t = np.asarray(thresholds, dtype=np.float64)[np.asarray(labels, dtype=np.int64).reshape(-1)]
    return float(closeness(scores, np.where(np.isfinite(t), t, 0.5)).max())


def most_uncertain_first(ids: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """The ids ordered from most to least uncertain (stable for equal scores)."""
    return np.asarray(ids)[np.argsort(-uncertainty(probs, thresholds), kind="stable")]
