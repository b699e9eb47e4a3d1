"""Which suggestions may be called confident: precision-targeted thresholds, and when to abstain.

A label's threshold is the lowest calibrated probability t at which the one-sided 95 % Wilson
lower bound of precision of "probability >= t" meets the target. The counts come from two kinds
of measurement of the same thing, pooled:

- out-of-fold rows of the labeled set: every row with a score >= t is a prediction, correct when
  the label is present;
- decisions people took on shown suggestions of images outside that labeled set: an accepted one
  is a correct prediction, a rejected one a wrong one, counted at every t <= the probability it
  was shown with. Decisions only exist where suggestions were shown (at or above the threshold in
  force then, ``shown_from``), so they are counted only at cutoffs t >= ``shown_from``: below it
  they would add their high-probability part alone and make the estimate optimistic.

A label that reaches the target at no cutoff is not confident (threshold +inf): its suggestions
are ranked probabilities, never pre-ticked, never accepted in bulk.

A label is **near chance** when its out-of-fold AP is not clearly above what a random ranking
scores (AP = prevalence): lift = (AP - prevalence) / (1 - prevalence) < ``NEAR_CHANCE_LIFT``.
Such a label is never confident, and when every trained label is near chance (or none is
trained) the model abstains: the annotate page says it is still learning instead of showing
numbers that look confident.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# One-sided 95 %: the precision is at least the bound with 95 % confidence.
Z_95_ONE_SIDED = 1.6448536  # the standard normal 95th percentile
NEAR_CHANCE_LIFT = 0.2


def wilson_lower(successes: np.ndarray | float, n: np.ndarray | float, z: float = Z_95_ONE_SIDED) -> np.ndarray:
    """Wilson score lower bound of a proportion; 0 where n is 0."""
    k, n = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    safe = np.maximum(n, 1)
    p = k / safe
    centre = p + z * z / (2 * safe)
    spread = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe))
    return np.where(n > 0, (centre - spread) / (1 + z * z / safe), 0.0)


@dataclass(frozen=True)
class LabelConfidence:
    threshold: float  # +inf when not confident
    lower_bound: float | None  # Wilson bound of precision at the threshold (at the best cutoff if not confident)
    precision: float | None  # point estimate there
    predictions: int  # how many measured predictions the bound rests on (out-of-fold + decisions)
    oof_coverage: float  # share of the labeled rows at or above the threshold

    @property
    def confident(self) -> bool:
        return bool(np.isfinite(self.threshold))

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold if self.confident else None,
            "confident": self.confident,
            "precision_lower_bound": self.lower_bound,
            "precision": self.precision,
            "predictions": self.predictions,
            "oof_coverage": self.oof_coverage,
        }


def precision_threshold(
    y: np.ndarray,
    scores: np.ndarray,
    target: float,
    *,
    decided: np.ndarray | None = None,
    accepted: np.ndarray | None = None,
    shown_from: float = 0.0,
    z: float = Z_95_ONE_SIDED,
) -> LabelConfidence:
    """One label: (N,) truths and calibrated out-of-fold scores, plus (M,) probabilities of decided
    suggestions and whether each was accepted -> its precision-targeted threshold."""
    cutoffs, n, k, above, rows = _pooled(y, scores, decided, accepted, shown_from)
    if len(cutoffs) == 0:
        return LabelConfidence(float("inf"), None, None, 0, 0.0)
    bound = wilson_lower(k, n, z)
    meets = np.flatnonzero(bound >= target)
    i = int(meets[-1]) if len(meets) else int(np.argmax(bound))  # the lowest cutoff that meets it
    confident = len(meets) > 0
    return LabelConfidence(
        threshold=float(cutoffs[i]) if confident else float("inf"),
        lower_bound=float(bound[i]),
        precision=float(k[i] / n[i]) if n[i] else None,
        predictions=int(n[i]),
        oof_coverage=float(above[i] / rows) if rows and confident else 0.0,
    )


def _pooled(
    y: np.ndarray,
    scores: np.ndarray,
    decided: np.ndarray | None,
    accepted: np.ndarray | None,
    shown_from: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Every candidate cutoff (each distinct score, highest first) with the pooled counts at it:
    (cutoffs, predictions, correct, out-of-fold rows at or above it, out-of-fold rows)."""
    y, s = np.asarray(y).astype(bool), np.asarray(scores, dtype=np.float64)
    decided = np.zeros(0) if decided is None else np.asarray(decided, dtype=np.float64)
    accepted = np.zeros(0, bool) if accepted is None else np.asarray(accepted).astype(bool)
    cutoffs = np.unique(np.concatenate([s, decided]))[::-1]
    above = len(s) - np.searchsorted(np.sort(s), cutoffs, side="left")  # rows with score >= cutoff
    tp = _tp_at(y, s, cutoffs)
    d_order = np.argsort(decided)
    d_sorted, d_acc = decided[d_order], accepted[d_order]
    d_above = len(decided) - np.searchsorted(d_sorted, cutoffs, side="left")
    acc_cum = np.concatenate([[0], np.cumsum(d_acc[::-1])])  # accepted among the top k decisions
    d_tp = acc_cum[d_above]
    use = cutoffs >= shown_from
    return cutoffs, above + np.where(use, d_above, 0), tp + np.where(use, d_tp, 0), above, len(s)


def precision_steps(
    y: np.ndarray,
    scores: np.ndarray,
    *,
    start: float,
    stop: float = float("inf"),
    decided: np.ndarray | None = None,
    accepted: np.ndarray | None = None,
    shown_from: float = 0.0,
    most: int = 48,
) -> list[list[float]]:
    """The pooled counts ``precision_threshold`` judged by, at the candidate cutoffs from ``start``
    (included) up to ``stop`` (excluded), lowest first: [[cutoff, predictions, correct], ...], at
    most ``most`` of them (evenly spread over the candidates, ``start``'s always kept). Stored with
    a fit, they let decisions raise a cutoff between fits (``labeling.trust``) without the scores."""
    cutoffs, n, k, _, _ = _pooled(y, scores, decided, accepted, shown_from)
    keep = np.flatnonzero((cutoffs >= start) & (cutoffs < stop))[::-1]  # lowest cutoff first
    if len(keep) > most:
        keep = keep[np.unique(np.linspace(0, len(keep) - 1, most).round().astype(int))]
    return [[float(cutoffs[i]), int(n[i]), int(k[i])] for i in keep]


def _tp_at(y: np.ndarray, s: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    order = np.argsort(-s, kind="stable")
    tp_cum = np.concatenate([[0], np.cumsum(y[order])])
    above = len(s) - np.searchsorted(np.sort(s), cutoffs, side="left")
    return tp_cum[above]


def label_lift(y: np.ndarray, ap: float | None) -> float | None:
    """(AP - prevalence) / (1 - prevalence): 0 for a random ranking, 1 for a perfect one."""
    y = np.asarray(y).astype(bool)
    prevalence = float(y.mean()) if len(y) else 0.0
    if ap is None or prevalence >= 1.0:
        return None
    return float((ap - prevalence) / (1 - prevalence))


def near_chance(lift: float | None) -> bool:
    return lift is None or lift < NEAR_CHANCE_LIFT


def still_learning(labels: list[dict[str, Any]], min_examples: int = 3) -> str | None:
    """The annotate page's one line when the model abstains, else None.

    ``labels``: per label {"label", "trained", "positives", "near_chance"}. The model abstains when
    no trained label is clearly above chance. It names the weakest label (fewest positives among
    the near-chance or untrained ones) and asks for as many more positives as it has (a doubling,
    at least up to ``min_examples``): the learning curve of a linear probe is roughly linear in
    the log of the labeled set, so halving the distance takes a doubling, not a fixed count.
    """
    if any(label["trained"] and not label["near_chance"] for label in labels):
        return None
    weak = [label for label in labels if not label["trained"] or label["near_chance"]]
    if not weak:
        return None
    weakest = min(weak, key=lambda label: label["positives"])
    more = max(min_examples - weakest["positives"], weakest["positives"], 1)
    return f"the model is still learning: {more} more labels of {weakest['label']} would help"
