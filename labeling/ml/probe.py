"""A multilabel linear probe: one logistic regression per label on standardised features.

Sigmoid + binary cross-entropy per label (never a softmax: an image can hold several labels
or none). The weight decay is chosen by k-fold cross-validation on mAP, and each label's
decision threshold is the one that maximises F1 on the out-of-fold predictions, so neither
is tuned on predictions the model was fitted to. Full-batch L-BFGS in float64 on the CPU:
a few hundred to a few thousand images fit in well under a second per fold.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labeling.ml.calibrate import Platt
from labeling.ml.files import replaced
from labeling.ml.metrics import average_precision, rank


@dataclass(frozen=True)
class ProbeConfig:
    weight_decays: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    folds: int = 5
    # Below this many positives (or negatives) a label gets no model: CV folds would hold
    # none of them and the threshold would be a guess. It is reported, never predicted.
    min_examples: int = 3
    max_iter: int = 200
    seed: int = 0


@dataclass
class LinearProbe:
    mean: np.ndarray  # (D,) feature standardisation
    std: np.ndarray  # (D,)
    weight: np.ndarray  # (D, L)
    bias: np.ndarray  # (L,)
    thresholds: np.ndarray  # (L,); +inf for labels without a model, so they are never predicted
    trained: np.ndarray  # (L,) bool
    positives: np.ndarray  # (L,) int, in the training set
    negatives: np.ndarray  # (L,) int
    weight_decay: float | None  # None when no label could be trained (never NaN: it ends up in JSON)
    cv_map: dict[float, float | None] = field(default_factory=dict)
    # Out-of-fold probabilities at the chosen weight decay, (N, L); NaN in untrained columns.
    # What cross-validated metrics are computed from: no row was predicted by a model fitted to it.
    oof_scores: np.ndarray | None = None

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, L) float32 probabilities."""
        return _predict(self.mean, self.std, self.weight, self.bias, features)

    def label_report(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """Per label: trained or why not, and the counts it was trained on."""
        names = names or [str(i) for i in range(len(self.trained))]
        return [
            {
                "label": name,
                "trained": bool(t),
                "positives": int(p),
                "negatives": int(n),
                "reason": None if t else ("too few positives" if p < n else "too few negatives"),
            }
            for name, t, p, n in zip(names, self.trained, self.positives, self.negatives)
        ]


def fit_probe(features: np.ndarray, labels: np.ndarray, config: ProbeConfig | None = None) -> LinearProbe:
    """(N, D) features and (N, L) 0/1 labels -> a fitted probe. Never fails on a rare label."""
    config = config or ProbeConfig()
    x, y = np.asarray(features, dtype=np.float64), np.asarray(labels).astype(bool)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"expected (N, D) features and (N, L) labels, got {x.shape} and {y.shape}")
    mean, std = x.mean(axis=0), standardisation_scale(x)
    x = (x - mean) / std
    positives, negatives = y.sum(axis=0), (~y).sum(axis=0)
    trained = (positives >= config.min_examples) & (negatives >= config.min_examples)
    weight, bias = np.zeros((x.shape[1], y.shape[1])), _prior_logit(positives, len(y))
    thresholds = np.full(y.shape[1], np.inf)
    probe = LinearProbe(mean, std, weight, bias, thresholds, trained, positives, negatives, None)
    if not trained.any():
        return probe
    # Every (weight decay, fold) problem and the final fits are independent convex problems:
    # one L-BFGS run over all of them at once, as a batch, instead of one run each.
    folds = _folds(len(y), config)
    decays = np.asarray(config.weight_decays, dtype=np.float64)
    held = np.stack([np.isin(np.arange(len(y)), f) for f in folds])  # (K, N)
    train_mask = np.concatenate([np.tile(~held, (len(decays), 1)), np.ones((len(decays), len(y)), bool)])
    problem_decay = np.concatenate([np.repeat(decays, len(folds)), decays])
    w, b = _fit_many(x, y[:, trained], train_mask, problem_decay, config.max_iter)  # (P, D, L'), (P, L')
    logits = np.einsum("nd,pdl->pnl", x, w[: -len(decays)]) + b[: -len(decays), None, :]
    oof = (held[None, :, :, None] * _sigmoid(logits).reshape(len(decays), len(folds), *logits.shape[1:])).sum(1)
    cv = [_map(y[:, trained], oof[i]) for i in range(len(decays))]
    probe.cv_map = {float(wd): m for wd, m in zip(decays, cv)}
    # Ties go to the stronger decay: the simpler model, when the data cannot tell them apart.
    best = max(range(len(decays)), key=lambda i: (cv[i] if cv[i] is not None else -1.0, decays[i]))
    probe.weight_decay = float(decays[best])
    final = len(decays) * len(folds) + best
    probe.weight[:, trained], probe.bias[trained] = w[final], b[final]
    probe.thresholds[trained] = best_f1_thresholds(y[:, trained], oof[best])
    probe.oof_scores = np.full(y.shape, np.nan, dtype=np.float32)
    probe.oof_scores[:, trained] = oof[best]
    return probe


@dataclass(frozen=True)
class SavedProbe:
    """A fitted probe as a probe run keeps it on disk for its shard tasks: what scoring, calibrating
    and pre-ticking need (the training counts and out-of-fold scores stay with the fit)."""

    label_ids: np.ndarray  # (L,) the database ids of the columns
    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)
    weight: np.ndarray  # (D, L)
    bias: np.ndarray  # (L,)
    thresholds: np.ndarray  # (L,) the F1 thresholds, which the uncertainty uses
    trained: np.ndarray  # (L,) bool
    calibration: Platt | None  # per-label Platt map; None in a file from before calibration
    confident: np.ndarray  # (L,) pre-tick thresholds on the calibrated scale (+inf: never pre-ticked)
    # "features": this probe scores the embeddings; "finetuned": the run's fine-tuned network scores
    # the images (labeling.ml.finetune) and everything else here is fitted to its scores.
    scorer: str = "features"

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Uncalibrated, as LinearProbe.predict_proba: (N, D) -> (N, L) float32."""
        return _predict(self.mean, self.std, self.weight, self.bias, features)

    def calibrated(self, probs: np.ndarray) -> np.ndarray:
        """The calibration applied to raw probabilities (unchanged for an old file)."""
        return probs if self.calibration is None else self.calibration.apply(probs)


def save_probe(
    path: str | Path,
    probe: LinearProbe,
    label_ids: np.ndarray,
    *,
    calibration: Platt | None = None,
    confident: np.ndarray | None = None,
    scorer: str = "features",
) -> None:
    """The probe, its per-label calibration (Platt a, b; identity when None) and confident
    thresholds (default: the F1 ones), written atomically to ``path`` (.npz)."""
    calibration = calibration or Platt.identity(len(label_ids))
    with replaced(path) as f:
        np.savez(
            f,
            mean=probe.mean,
            std=probe.std,
            weight=probe.weight,
            bias=probe.bias,
            thresholds=probe.thresholds,
            trained=probe.trained,
            label_ids=label_ids,
            calibration_a=calibration.a,
            calibration_b=calibration.b,
            confident=probe.thresholds if confident is None else confident,
            scorer=np.array(scorer),
        )


def load_probe(path: str | Path) -> SavedProbe:
    """A probe written by ``save_probe`` (or by a version before calibration: then uncalibrated,
    pre-ticked at the F1 thresholds)."""
    with np.load(path) as data:
        saved = {k: data[k] for k in data.files}
    calibration = Platt(saved["calibration_a"], saved["calibration_b"]) if "calibration_a" in saved else None
    return SavedProbe(
        label_ids=saved["label_ids"],
        mean=saved["mean"],
        std=saved["std"],
        weight=saved["weight"],
        bias=saved["bias"],
        thresholds=saved["thresholds"],
        trained=saved["trained"],
        calibration=calibration,
        confident=saved.get("confident", saved["thresholds"]),
        scorer=str(saved["scorer"]) if "scorer" in saved else "features",
    )


def _predict(
    mean: np.ndarray, std: np.ndarray, weight: np.ndarray, bias: np.ndarray, features: np.ndarray
) -> np.ndarray:
    x = (np.asarray(features, dtype=np.float64) - mean) / std
    return _sigmoid(x @ weight + bias).astype(np.float32)


def standardisation_scale(x: np.ndarray, relative_floor: float = 0.01) -> np.ndarray:
    """(N, D) -> (D,) per-feature scale: the std, but at least ``relative_floor`` x the median std.

    A feature that barely varies on the few labeled images (std 1e-5 where the others have 1)
    would otherwise give an unlabeled image a standardised value in the thousands, and that one
    dimension would decide its prediction whatever the weights learned. The floor keeps such a
    feature within ~100x of a typical one, where its (small, weight-decayed) weight cannot win.
    """
    std = x.std(axis=0)
    varying = std[std > 1e-12]
    floor = relative_floor * float(np.median(varying)) if len(varying) else 1.0
    scale: np.ndarray = np.maximum(std, max(floor, 1e-12))
    return scale


def untrainable_message(probe: "LinearProbe | None", names: list[str], min_examples: int = 3) -> str | None:
    """The user-facing reason a fit has no model at all (``probe`` None: nothing could be fitted),
    or None when some label was trained."""
    if probe is not None and probe.trained.any():
        return None
    return f"not enough labels yet: need {min_examples} of each for {', '.join(names) if names else 'any label'}"


def learning_curve(
    features: np.ndarray,
    labels: np.ndarray,
    weight_decay: float,
    fractions: tuple[float, ...] = (0.25, 0.5, 1.0),
    config: ProbeConfig | None = None,
) -> list[dict[str, Any]]:
    """Out-of-fold mAP when the probe sees only a share of the labeled set (a seeded random subset
    per fraction, cross-validated at the chosen weight decay): rising at 100 % means more labels
    would still help; flat means the features are the limit. ``map`` is None where the subset
    leaves no label with ``min_examples`` of each."""
    config = config or ProbeConfig()
    x, y = np.asarray(features, dtype=np.float64), np.asarray(labels).astype(bool)
    order = np.random.default_rng(config.seed + 1).permutation(len(y))
    curve = []
    for fraction in fractions:
        rows = np.sort(order[: max(2, int(round(fraction * len(y))))])
        xs, ys = x[rows], y[rows]
        xs = (xs - xs.mean(axis=0)) / standardisation_scale(xs)
        trained = (ys.sum(0) >= config.min_examples) & ((~ys).sum(0) >= config.min_examples)
        value = None
        if trained.any():
            folds = _folds(len(ys), config)
            held = np.stack([np.isin(np.arange(len(ys)), f) for f in folds])
            w, b = _fit_many(xs, ys[:, trained], ~held, np.full(len(folds), weight_decay), config.max_iter)
            oof = (held[:, :, None] * _sigmoid(np.einsum("nd,pdl->pnl", xs, w) + b[:, None, :])).sum(0)
            value = _map(ys[:, trained], oof)
        curve.append({"fraction": fraction, "labeled": int(len(rows)), "map": value})
    return curve


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    # These problems are small: an intra-op thread pool gains little on them, and when the
    # cores are shared (a pretraining beside the probe) its spinning threads make the fit ~15x
    # slower (measured: 24 s with 2 threads vs 1.6 s with 1, for 210 x 512 on 2 busy cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fit_many(
    x: np.ndarray, y: np.ndarray, train_mask: np.ndarray, weight_decays: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    with _one_thread():
        return _fit_many_one_thread(x, y, train_mask, weight_decays, max_iter)


def _fit_many_one_thread(
    x: np.ndarray, y: np.ndarray, train_mask: np.ndarray, weight_decays: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """P independent multilabel logistic regressions on rows ``train_mask[p]`` of x, y.

    (N, D), (N, L), (P, N), (P,) -> weights (P, D, L), biases (P, L).
    """
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float64))
    mask = torch.from_numpy(train_mask.astype(np.float64))  # (P, N)
    decay = torch.from_numpy(weight_decays).view(-1, 1, 1)
    count = mask.sum(dim=1, keepdim=True)  # (P, 1)
    pos = mask @ yt  # (P, L)
    # Class imbalance: weigh positives by neg/pos so each label's two classes count equally...
    pos_weight = (count - pos).clamp(min=1) / pos.clamp(min=1)  # (P, L)
    w = torch.zeros((len(mask), x.shape[1], y.shape[1]), dtype=torch.float64, requires_grad=True)
    b = torch.zeros((len(mask), y.shape[1]), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = torch.einsum("nd,pdl->pnl", xt, w) + b[:, None, :]  # (P, N, L)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, yt.expand_as(logits), pos_weight=pos_weight[:, None, :], reduction="none"
        )
        per_problem = (bce * mask[:, :, None]).sum(dim=1) / count  # (P, L) mean over its rows
        loss = per_problem.sum() + 0.5 * (decay * w.pow(2)).sum()
        loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]  # unannotated in torch
    # ...then undo the weighting's shift of the odds (prior correction, King & Zeng 2001), so
    # probabilities stay calibrated to how often the label really occurs.
    return w.detach().numpy(), (b.detach() - torch.log(pos_weight)).numpy()


def _map(y: np.ndarray, scores: np.ndarray) -> float | None:
    ap = average_precision(rank(y, scores))
    ap = ap[np.isfinite(ap)]
    return float(ap.mean()) if len(ap) else None


def best_f1_thresholds(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(L,) thresholds t maximising F1 of ``score >= t`` per label; +inf if a label has no positive."""
    r = rank(y, scores)
    f1 = np.where(r.tie_end, 2 * r.tp / (r.predicted + r.tp[-1]), -1.0)  # only whole tie groups
    best = np.argmax(f1, axis=0)
    t = r.scores[best, np.arange(y.shape[1])]
    return np.where(r.tp[-1] > 0, t, np.inf)


def _folds(n: int, config: ProbeConfig) -> list[np.ndarray]:
    return folds(n, config.folds, config.seed)


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` (at least 2, at most n) sorted row sets that split range(n), drawn by ``seed``: the
    probe's and the fine-tuning's (labeling.ml.finetune), so both hold out the same rows."""
    k = max(2, min(k, n))
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(f) for f in np.array_split(order, k)]


def _prior_logit(positives: np.ndarray, n: int) -> np.ndarray:
    p = np.clip(positives / max(n, 1), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))  # no overflow warnings for large |z|
