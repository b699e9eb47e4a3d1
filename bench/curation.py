"""Curation with the embeddings (issue 17): what labeling/ml/curation.py finds, and how fast.

    python -m bench.curation [--parts mistakes duplicates duplicates_speed latency bulk] [--budget 120] [--ann]

- mistakes: 1,000 demo scenes with their true tags; 5 % of the images get one tag flipped at
  random; the probe's out-of-fold self-confidence ranks them (labeling.ml.curation.likely_mistakes).
  Figure: the share of the flipped images in the top 10 % (target >= 0.6), over three flips, with
  the features of a Barlow Twins backbone pretrained here for --budget seconds (the CPU preset at
  32 px) and, for scale, of a random-init backbone.
- mistakes_finetuned: the same flipped labels ranked by the out-of-fold scores a probe fit that
  fine-tunes uses (from SUGGEST_FINETUNE_FROM labels: the network's, or its average with the frozen
  probe's, labeling.ml.metrics.choose_scorer; each is reported, and the one chosen): a backbone
  pretrained for --budget seconds (``--width`` / ``--stem``: the CPU preset's by default; the
  2026-12-06 figure used a quarter width through the small stem), cross-fitted on the flipped labels
  by labeling.ml.finetune (3 folds, ``--finetune-epochs``, at most 600 steps a network), for
  ``--flips`` flips.
- duplicates: 400 distinct scenes plus, for 100 of them, a planted copy: a crop (80-95 %), a JPEG
  re-encode (quality 50) or a small colour shift; on the demo scenes and on the clutter family
  (annotator/demo/clutter.py, a backbone pretrained on its own scenes). Two rules: pairs at or above
  a cosine threshold of the features, and the app's (labeling.ml.curation.near_duplicate_groups:
  candidates confirmed by the pixels), each closed by union-find; precision and recall of "same
  group" over all pairs, per threshold; the threshold is chosen on half of the planted groups and
  judged on the other half (target >= 0.9 both), and the app's constants judged on all of them.
- duplicates_speed: the worker's near-duplicate step on 10,000 and 50,000 (DUPLICATES_PIXELS_MAX)
  smooth random images with random features and 1 % planted copies: seconds, and the copies found.
- latency: more like this (labeling.ml.curation.nearest over float16 unit rows kept in memory, as
  the web process keeps them) at 100k and 1M synthetic 512-d vectors: p50/p95 of 40 queries. With
  ``--ann``, also the approximate index the worker builds from 100,000 images on (labeling.ml.ann,
  faiss IVF, float16 rows): its build time, p50/p95 and recall@10 against the exact search, on the
  same random (isotropic: the hardest case for an index) vectors and on clustered ones.
- bulk: POST bulk-tags/'s service on 5,000 images of a fresh SQLite project (target < 5 s).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np
import torch
from PIL import Image, ImageEnhance

from bench._util import machine_load, rounded, write_result

SEED = 0


def _features(backbone, images: np.ndarray) -> np.ndarray:
    """The features the app's probe reads on a CPU worker (the CPU preset's feature options)."""
    from labeling.ml.presets import feature_options
    from labeling.ml.embed import embed_images
    from labeling.ml.presets import PRESETS

    return embed_images(backbone, images, device="cpu", **feature_options(PRESETS["cpu"]))


def _pretrained(images: np.ndarray, budget: float, *, width: int = 64, small_stem: bool = False):
    from labeling.ml.backbone import ModelConfig
    from labeling.ml.presets import PRESETS
    from labeling.ml.train import PretrainConfig, Runtime, build_model, pretrain

    preset = PRESETS["cpu"]
    model = ModelConfig(
        resolution=preset["resolution"], small_stem=small_stem, projector=tuple(preset["projector"]), width=width
    )
    config = PretrainConfig(
        model=model,
        epochs=preset["epochs"],
        batch_size=preset["batch_size"],
        warmup_epochs=preset["warmup_epochs"],
        lr_weights=preset["lr_weights"],
        seed=SEED,
        crop_scale=(preset["crop_min"], 1.0),
        colour=preset["colour"],
        time_budget_s=budget,
    )
    start = time.perf_counter()
    run = pretrain(config, images, Runtime(device="cpu", log_every=10**9, progress_every_s=60))
    info = {"seconds": round(time.perf_counter() - start, 1), "steps": len(run.loss_history), "status": run.status}
    info["model"] = {"width": width, "small_stem": small_stem}
    return run.model.backbone, build_model(config).backbone, info


def _scenes(start: int, n: int, size: int = 128):
    from annotator.demo.scenes import LABELS, render_scene

    out = []
    for k in range(n):
        scene = render_scene(start + k, seed=SEED, size=(size, size))
        out.append((scene.image.convert("RGB"), [name in scene.labels for name in LABELS]))
    return out


def _square(images: list, resolution: int = 32) -> np.ndarray:
    from labeling.ml.cache import decode_square

    return np.stack([decode_square(image, resolution) for image in images])


# ---------------------------------------------------------------------------------------------


def _flipped(labels: np.ndarray, flip: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip ``flip``: 5 % of the images, one random label each flipped; (those images, the labels)."""
    rng = np.random.default_rng((SEED, flip))
    flipped = rng.choice(len(labels), len(labels) // 20, replace=False)
    y = labels.astype(np.float32).copy()
    columns = rng.integers(0, y.shape[1], len(flipped))
    y[flipped, columns] = 1 - y[flipped, columns]
    return flipped, y


def _share_in_top(flipped: np.ndarray, score: np.ndarray) -> float:
    """The share of the flipped images among the top 10 % of ``score`` (NaN last)."""
    ranked = np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")
    return float(np.isin(flipped, ranked[: len(score) // 10]).mean())


def mistakes(features: dict[str, np.ndarray], labels: np.ndarray, flips: int = 3) -> dict:
    """Per feature set: the share of the flipped images in the top 10 % of the app's ranking
    (likely_mistakes), and of each candidate ranking on the same out-of-fold scores."""
    from labeling.ml.curation import likely_mistakes
    from labeling.ml.probe import fit_probe

    rankings = {
        "app": lambda y, oof: likely_mistakes(y, oof).score,
        "self_confidence": lambda y, oof: 1 - np.nanmin(np.where(y > 0.5, oof, 1 - oof), axis=1),
        "likelihood_ratio": lambda y, oof: np.nanmax(label_doubt(y, oof), axis=1),
        "normalised_self_confidence": lambda y, oof: 1 - np.nanmin(normalised_self_confidence(y, oof), axis=1),
    }
    knn_rankings = {  # candidates that also read the features (not in the app)
        "knn_disagreement": lambda x, y, oof: np.max(np.abs(y - neighbour_labels(x, y)), axis=1),
        "knn_plus_self_confidence": lambda x, y, oof: _rank01(np.max(np.abs(y - neighbour_labels(x, y)), axis=1))
        + _rank01(1 - np.nanmin(np.where(y > 0.5, oof, 1 - oof), axis=1)),
    }
    out: dict = {}
    for name, x in features.items():
        shares: dict[str, list[float]] = {r: [] for r in [*rankings, *knn_rankings]}
        maps = []
        for flip in range(flips):
            flipped, y = _flipped(labels, flip)
            probe = fit_probe(x.astype(np.float32), y)
            maps.append(round(_map(labels, probe.oof_scores), 3))
            scores = {r: order(y, probe.oof_scores) for r, order in rankings.items()}
            scores |= {r: order(x, y, probe.oof_scores) for r, order in knn_rankings.items()}
            for r, score in scores.items():
                shares[r].append(_share_in_top(flipped, score))
        out[name] = {
            "oof_map_against_the_true_labels": maps,
            **{r: {"flipped_in_top_10pct": v, "mean": round(float(np.mean(v)), 3)} for r, v in shares.items()},
        }
        print(f"mistakes, {name}: oof mAP {maps}; flipped images in the top 10 %: {out[name]}", flush=True)
    return out


def mistakes_finetuned(
    backbone,
    model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    flips: int,
    epochs: int,
    folds: int = 3,
    first_flip: int = 0,
) -> dict:
    """The flipped images' share in the top 10 % when the out-of-fold scores come from ``backbone``
    fine-tuned on the other folds' (flipped) labels, as a probe fit that fine-tunes makes them
    (labeling.ml.finetune.cross_fit), instead of a probe on frozen features; beside it, the same for
    the frozen probe on the networks' folds, for the two averaged, and for the scorer the app would
    choose (labeling.ml.metrics.choose_scorer on the out-of-fold mAPs against the flipped labels)."""
    from labeling.ml.curation import likely_mistakes
    from labeling.ml.finetune import FinetuneConfig, cross_fit
    from labeling.ml.metrics import choose_scorer
    from labeling.ml.probe import ProbeConfig, fit_probe

    config = FinetuneConfig(folds=folds, epochs=epochs)
    x = _features(backbone, images).astype(np.float32)
    out: dict = {"finetune": {**config.__dict__}, "flips": []}
    for flip in range(first_flip, first_flip + flips):
        flipped, y = _flipped(labels, flip)  # the same flips as mistakes() (from flip 0)
        t = time.perf_counter()
        _, oof = cross_fit(backbone.state_dict(), model, images, y, config, final=False)
        seconds = round(time.perf_counter() - t)
        probe = fit_probe(x, y)  # its weight decay, then its out-of-fold scores on the networks' folds
        same = fit_probe(x, y, ProbeConfig(folds=folds, seed=config.seed, weight_decays=(probe.weight_decay,)))
        scores = {"finetuned": oof, "features": same.oof_scores, "ensemble": (oof + same.oof_scores) / 2}
        # A candidate registered before flips 6-8 ran (session 27): the frozen probe weighed twice, its
        # out-of-fold scores on the networks' 3 folds and on its own 5.
        scores["ensemble_frozen2"] = (oof + same.oof_scores + probe.oof_scores) / 3
        by_scorer = {
            k: {
                "flipped_in_top_10pct": _share_in_top(flipped, likely_mistakes(y, v).score),
                "oof_map": round(_map(labels, v), 3),  # against the true labels
            }
            for k, v in scores.items()
        }
        out["flips"].append(
            {
                **by_scorer["finetuned"],
                "flip": flip,
                "seconds": seconds,
                "by_scorer": by_scorer,
                "chosen": choose_scorer({k: _map(y, v) for k, v in scores.items()}),  # as the app sees them
            }
        )
        print(f"mistakes, fine-tuned out-of-fold scores, flip {flip}: {out['flips'][-1]}", flush=True)
    out["mean"] = round(float(np.mean([f["flipped_in_top_10pct"] for f in out["flips"]])), 3)
    out["mean_by_scorer"] = {
        k: round(float(np.mean([f["by_scorer"][k]["flipped_in_top_10pct"] for f in out["flips"]])), 3)
        for k in ("features", "finetuned", "ensemble", "ensemble_frozen2")
    }
    out["mean_chosen"] = round(
        float(np.mean([f["by_scorer"][f["chosen"]]["flipped_in_top_10pct"] for f in out["flips"]])), 3
    )
    return out


def _map(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean AP over the labels that have a positive."""
    from labeling.ml.metrics import average_precision, rank

    return float(np.nanmean(average_precision(rank(labels, scores))))


def normalised_self_confidence(labels: np.ndarray, oof: np.ndarray) -> np.ndarray:
    """A candidate, measured and not adopted (confident learning's per-class thresholds, Northcutt
    et al. 2021): each cell's self-confidence divided by its label's mean self-confidence on the same
    side (given: mean p of the images given the label; left out: mean 1 - p of the others), so a
    label the probe is unsure of everywhere does not fill the top of the ranking with its right
    positives. (N, L). It put 0.24 of the flipped images in the top 10 % against 0.22 for
    self-confidence on the same Barlow Twins features, and 0.16 against 0.17 on random ones
    (bench/results/curation_mistakes_normalised.json, three flips each): within the noise of 50 flips."""
    y = np.asarray(labels, dtype=np.float64) > 0.5
    p = np.asarray(oof, dtype=np.float64)
    conf = np.where(y, p, 1 - p)
    on = np.where(y, conf, np.nan)
    off = np.where(~y, conf, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        t1, t0 = np.nanmean(on, axis=0), np.nanmean(off, axis=0)
        return np.where(y, conf / t1, conf / t0)


def neighbour_labels(features: np.ndarray, labels: np.ndarray, k: int = 10) -> np.ndarray:
    """A candidate, measured and not adopted: each image's labels as its ``k`` nearest neighbours
    by cosine of the features (itself left out) carry them, (N, L) shares 0..1; an image whose given
    label disagrees with what its neighbours carry is doubted. On the CPU preset's features it put
    fewer flipped images first than self-confidence: 0.173 alone and 0.247 summed with it, against
    0.267 (bench/results/curation_knn.json): at this feature quality the neighbours share too few
    labels to vouch for them."""
    x = np.asarray(features, dtype=np.float64)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argpartition(-similarity, k, axis=1)[:, :k]
    return np.asarray(labels, dtype=np.float64)[nearest].mean(axis=1)


def _rank01(score: np.ndarray) -> np.ndarray:
    order = np.argsort(np.argsort(np.nan_to_num(score, nan=-np.inf), kind="stable"), kind="stable")
    return order / max(len(score) - 1, 1)


def label_doubt(labels: np.ndarray, oof: np.ndarray, *, least: int = 5) -> np.ndarray:
    """A candidate ranking, measured against self-confidence and not adopted: it put fewer flipped
    images first (bench/results/curation_mistakes.json: 0.15 against 0.23).

    (N, L) 0/1 human labels and out-of-fold probabilities -> (N, L) how much likelier each cell's
    score is under the other answer than under the one the person gave: per label, the density of
    the scores of the images given the label (f1) and of those without it (f0), each a Gaussian
    kernel estimate on logit(p) (Scott's bandwidth); a given label's ratio is f0(p) / f1(p), a
    left-out one's f1(p) / f0(p). Where a label's scores do not separate the two groups the ratio
    stays near 1 whatever p is, so a weak label raises no doubt; self-confidence (1 - p for a given
    label) would rank every positive a weak label missed as a mistake. NaN where p is NaN or the
    label has fewer than ``least`` images on either side."""
    y = np.asarray(labels, dtype=np.float64) > 0.5
    p = np.asarray(oof, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ")
    out = np.full(p.shape, np.nan)
    z = np.log(np.clip(p, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(p, 1e-6, 1 - 1e-6))
    for j in range(p.shape[1]):
        ok = ~np.isnan(p[:, j])
        ones, zeros = z[ok & y[:, j], j], z[ok & ~y[:, j], j]
        if len(ones) < least or len(zeros) < least:
            continue
        f1, f0 = _density(ones, z[ok, j]), _density(zeros, z[ok, j])
        ratio = np.where(y[ok, j], f0 / f1, f1 / f0)
        out[np.flatnonzero(ok), j] = ratio
    return out


def _density(sample: np.ndarray, at: np.ndarray) -> np.ndarray:
    """A Gaussian kernel density of ``sample`` at ``at`` (Scott's bandwidth), floored so that a
    ratio of two never divides by zero."""
    width = max(float(np.std(sample)) * len(sample) ** -0.2, 1e-3)
    d = (at[:, None] - sample[None, :]) / width
    dens = np.exp(-0.5 * d * d).sum(axis=1) / (len(sample) * width * np.sqrt(2 * np.pi))
    return np.maximum(dens, 1e-12)


def _planted(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    if kind == "crop":
        s = rng.uniform(0.8, 0.95)
        x, y = rng.uniform(0, 1 - s) * w, rng.uniform(0, 1 - s) * h
        return image.crop((int(x), int(y), int(x + s * w), int(y + s * h))).resize((w, h))
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=50)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    shifted = ImageEnhance.Color(image).enhance(rng.uniform(0.8, 1.2))
    return ImageEnhance.Brightness(shifted).enhance(rng.uniform(0.9, 1.1))


def _clutter(start: int, n: int, size: int = 128) -> list:
    from annotator.demo.clutter import render_scene

    return [render_scene(start + k, seed=SEED, size=(size, size)).image.convert("RGB") for k in range(n)]


def duplicates(backbones: dict, family: str = "demo", distinct: int = 400, planted: int = 100) -> dict:
    """Both rules on one family: features alone (a cosine threshold) and the app's rule (candidates
    confirmed by the pixels, labeling.ml.curation.near_duplicate_groups); each threshold chosen on
    half of the planted groups, judged on the other half."""
    from labeling.ml.curation import (
        DUPLICATE_FEATURE_CANDIDATES,
        DUPLICATE_PIXEL_THRESHOLD,
        DUPLICATE_VIEW_CANDIDATES,
        aligned_similarity,
        duplicate_candidates,
        duplicate_groups,
        group_pairs,
        near_duplicate_groups,
        small_pixels,
        unit_rows,
    )

    rng = np.random.default_rng(SEED)
    base = [image for image, _ in _scenes(10_000, distinct)] if family == "demo" else _clutter(10_000, distinct)
    kinds = ["crop", "jpeg", "colour"]
    copies = [_planted(base[i], kinds[i % 3], rng) for i in range(planted)]
    images = _square(base + copies)
    truth = np.concatenate([np.arange(distinct), np.arange(planted)])  # a copy's group is its original's
    ids = np.arange(len(images))
    half = np.arange(distinct) % 2 == 0  # groups chosen on / judged on
    pixels, seen = small_pixels(images), np.ones(len(images), bool)
    out: dict = {}
    for name, backbone in backbones.items():
        x = _features(backbone, images)
        sweep = {}
        for threshold in (0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998):
            groups = duplicate_groups(ids, x, threshold=threshold)
            sweep[threshold] = {
                part: _pair_scores(groups, truth, half[truth] == (part == "choose")) for part in ("choose", "judge")
            }
        best = max(sweep, key=lambda t: _f1(sweep[t]["choose"]))
        # The app's rule: the candidates once, their pixel similarity once, then every threshold.
        t = time.perf_counter()
        pairs = duplicate_candidates(
            unit_rows(x),
            pixels,
            seen,
            feature_candidates=DUPLICATE_FEATURE_CANDIDATES,
            view_candidates=DUPLICATE_VIEW_CANDIDATES,
            view_max=len(ids),
        )
        similarity = aligned_similarity(pixels[pairs[:, 0]], pixels[pairs[:, 1]])
        seconds = time.perf_counter() - t
        by_pixels = {}
        for threshold in (0.85, 0.88, 0.9, 0.92, 0.94, 0.96):
            groups = group_pairs(ids, pairs[similarity >= threshold])
            by_pixels[threshold] = {
                part: _pair_scores(groups, truth, half[truth] == (part == "choose")) for part in ("choose", "judge")
            }
        chosen = max(by_pixels, key=lambda t: _f1(by_pixels[t]["choose"]))
        app = near_duplicate_groups(ids, x, threshold=0.98, pixels=pixels)  # the app's constants
        out[name] = {
            "features": {
                "sweep": {str(t): v for t, v in sweep.items()},
                "threshold_chosen": best,
                "judged": sweep[best]["judge"],
                "by_kind_recall_at_chosen": _recall_by_kind(
                    duplicate_groups(ids, x, threshold=best), distinct, planted, kinds
                ),
            },
            "pixels": {
                "candidates": len(pairs),
                "candidates_and_confirmation_s": round(seconds, 2),
                "sweep": {str(t): v for t, v in by_pixels.items()},
                "threshold_chosen": chosen,
                "judged": by_pixels[chosen]["judge"],
                "app_threshold": DUPLICATE_PIXEL_THRESHOLD,
                "app_all_pairs": _pair_scores(app, truth, np.ones(len(ids), bool)),
                "app_by_kind_recall": _recall_by_kind(app, distinct, planted, kinds),
            },
        }
        print(
            f"duplicates, {family}, {name}: features at {best}: {sweep[best]['judge']}; pixels at {chosen}: "
            f"{by_pixels[chosen]['judge']}; the app's rule: {out[name]['pixels']['app_all_pairs']}",
            flush=True,
        )
    return out


def duplicates_speed(sizes: list[int], dim: int = 512) -> dict:
    """The worker's near-duplicate step (near_duplicate_groups with the app's constants) on N smooth
    random 32 px images (8 x 8 noise, upsampled) with random features, 1 % of them planted copies
    (shifted by 1-3 px and re-lit): its seconds at each size, and what it found."""
    from labeling.ml.curation import near_duplicate_groups

    out: dict = {"threads": torch.get_num_threads()}
    for n in sizes:
        g = torch.Generator().manual_seed(n)
        cells = torch.randint(0, 256, (n, 3, 8, 8), generator=g).float()
        big = torch.nn.functional.interpolate(cells, size=(40, 40), mode="bicubic").clamp(0, 255)
        pixels = big[:, :, 4:36, 4:36].round().byte()
        copies = n // 100
        for k in range(copies):  # image n - copies + k is a shifted, brighter copy of image k
            dx, dy = 1 + k % 3, 1 + (k // 3) % 3
            pixels[n - copies + k] = (big[k, :, 4 + dy : 36 + dy, 4 + dx : 36 + dx] * 1.05).clamp(0, 255).round().byte()
        features = torch.randn((n, dim), generator=g).half().numpy()
        t = time.perf_counter()
        groups = near_duplicate_groups(np.arange(n), features, threshold=0.98, pixels=pixels)
        seconds = time.perf_counter() - t
        found = float((groups[n - copies :] == groups[:copies]).mean())
        grouped = int((np.unique(groups, return_counts=True)[1] > 1).sum())
        out[str(n)] = {"seconds": round(seconds, 1), "planted": copies, "planted_found": found, "groups": grouped}
        print(
            f"duplicates at {n} images: {seconds:.1f} s, {found:.2f} of the planted copies, {grouped} groups",
            flush=True,
        )
    return out


def _pair_scores(groups: np.ndarray, truth: np.ndarray, rows: np.ndarray) -> dict:
    """Precision and recall of "in the same group" over every pair of the rows given."""
    g, t = groups[rows], truth[rows]
    same_found = g[:, None] == g[None, :]
    same_true = t[:, None] == t[None, :]
    upper = np.triu(np.ones_like(same_found), k=1)
    tp = int((same_found & same_true & upper).sum())
    found, true = int((same_found & upper).sum()), int((same_true & upper).sum())
    return {
        "precision": round(tp / found, 3) if found else None,
        "recall": round(tp / true, 3) if true else None,
        "pairs_found": found,
        "pairs_true": true,
    }


def _f1(s: dict) -> float:
    p, r = s["precision"] or 0.0, s["recall"] or 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def _recall_by_kind(groups: np.ndarray, distinct: int, planted: int, kinds: list[str]) -> dict:
    hit = groups[distinct + np.arange(planted)] == groups[np.arange(planted)]
    return {kind: round(float(hit[np.arange(planted) % 3 == k].mean()), 3) for k, kind in enumerate(kinds)}


def latency(sizes: list[int], queries: int = 40, dim: int = 512, block: int = 50_000) -> dict:
    from labeling.ml.curation import nearest, unit_half

    out = {}
    rng = np.random.default_rng(SEED)
    for n in sizes:
        blocks = []
        for start in range(0, n, block):
            rows = min(block, n - start)
            blocks.append(
                (np.arange(start, start + rows), unit_half(rng.standard_normal((rows, dim), dtype=np.float32)))
            )
        times = []
        for q in range(queries + 3):
            query = blocks[q % len(blocks)][1][q : q + 1]
            t = time.perf_counter()
            nearest(query, blocks, k=21, unit=True)
            times.append(time.perf_counter() - t)
        ms = np.array(times[3:]) * 1000  # the first three warm the allocator
        out[str(n)] = {
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
        }
        print(f"more like this at {n:,} vectors: {out[str(n)]} (torch threads {torch.get_num_threads()})", flush=True)
        del blocks
    return {"index": "exact, torch matmul over float16 unit rows in memory", "threads": torch.get_num_threads(), **out}


def _vectors(n: int, dim: int, kind: str, block: int, rng) -> list:
    """Blocks of (ids, float16 rows): "random" isotropic, or "clustered" (2,000 centres, each row a
    centre plus noise of the same norm: neighbours share a centre, as images of one scene do)."""
    centres = rng.standard_normal((2000, dim), dtype=np.float32) if kind == "clustered" else None
    blocks = []
    for start in range(0, n, block):
        rows = min(block, n - start)
        x = rng.standard_normal((rows, dim), dtype=np.float32)
        if centres is not None:
            x += centres[rng.integers(0, len(centres), rows)]
        blocks.append((np.arange(start, start + rows), x.astype(np.float16)))
    return blocks


def ann_latency(
    sizes: list[int], queries: int = 40, dim: int = 512, block: int = 50_000, nprobes=(16, 32, 64, 128)
) -> dict:
    """The approximate index against the exact search: build seconds, and p50/p95 and recall@10 (the
    query image left out) per number of lists visited."""
    import tempfile
    from pathlib import Path

    from labeling.ml.ann import AnnConfig, ann_build, ann_load, lists_for
    from labeling.ml.curation import nearest, unit_half

    out: dict = {"index": "faiss IVF, float16 rows (labeling.ml.ann)", "config": vars(AnnConfig())}
    rng = np.random.default_rng(SEED)
    for n in sizes:
        for kind in ("random", "clustered"):
            blocks = _vectors(n, dim, kind, block, rng)
            sample = np.concatenate([b[1][: lists_for(n) * 40 // len(blocks) + 1] for b in blocks])
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "ann.faiss"
                t = time.perf_counter()
                meta = ann_build(path, sample, iter(blocks), rows=n)
                build_s = time.perf_counter() - t
                index = ann_load(path)
            units = [(ids, unit_half(x)) for ids, x in blocks]
            pick = rng.choice(n, queries + 3, replace=False)
            rows = [units[row // block][1][row % block : row % block + 1] for row in pick]
            exact = [set(nearest(query, units, k=11, unit=True).ids[0][1:].tolist()) for query in rows]
            figures: dict = {"build_s": round(build_s, 1), "lists": meta["lists"], "default_nprobe": meta["nprobe"]}
            for nprobe in nprobes:
                times, recall = [], []
                for query, truth in zip(rows, exact):
                    t = time.perf_counter()
                    found = index.search(query, 11, nprobe=nprobe)
                    times.append(time.perf_counter() - t)
                    recall.append(len(set(found.ids[0][1:].tolist()) & truth) / 10)
                ms = np.array(times[3:]) * 1000  # the first three warm the caches
                figures[f"nprobe_{nprobe}"] = {
                    "p50_ms": round(float(np.percentile(ms, 50)), 2),
                    "p95_ms": round(float(np.percentile(ms, 95)), 2),
                    "recall_at_10": round(float(np.mean(recall[3:])), 3),
                }
            out[f"{n}_{kind}"] = figures
            print(f"ann at {n:,} {kind} vectors: {figures}", flush=True)
            del blocks, units, index
    return out


def bulk(images: int = 5000) -> dict:
    from bench._util import django_setup

    django_setup()
    from django.utils import timezone

    from annotator.services.bulk_tags import tags_bulk_set, tags_bulk_undo
    from tests.factories import bulk_images, make_project, make_user

    owner = make_user("owner")
    project = make_project(owner=owner)
    bulk_images(project, images, submitted=0, submitted_at=timezone.now(), folder="bench", size=(640, 480))
    ids = list(project.images.order_by("id").values_list("id", flat=True))
    versions = dict(project.images.values_list("id", "version"))
    label = project.labels.first()
    t = time.perf_counter()
    report = tags_bulk_set(project=project, user=owner, label=label, image_ids=ids, present=True, versions=versions)
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    undone = tags_bulk_undo(project=project, user=owner, token=report.undo)
    undo_s = time.perf_counter() - t
    print(f"bulk tag of {images:,} images: {write_s:.2f} s, undo {undo_s:.2f} s", flush=True)
    return {
        "images": images,
        "changed": len(report.changed),
        "write_s": round(write_s, 2),
        "undo_s": round(undo_s, 2),
        "undone": len(undone.changed),
        "token_bytes": len(report.undo),
        "database": "sqlite",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["mistakes", "duplicates", "latency", "bulk"])
    p.add_argument("--budget", type=float, default=120.0, help="pretraining seconds (CPU preset, 32 px)")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--name", default="curation")
    p.add_argument("--duplicate-sizes", type=int, nargs="+", default=[10_000, 50_000], help="duplicates_speed")
    p.add_argument("--families", nargs="+", default=["demo", "clutter"], help="duplicates: the scene families")
    p.add_argument("--ann", action="store_true", help="latency: the approximate index too")
    p.add_argument("--width", type=int, default=64, help="mistakes_finetuned: the backbone's first-stage channels")
    p.add_argument("--stem", choices=["small", "standard"], default="standard", help="mistakes_finetuned")
    p.add_argument("--flips", type=int, default=1, help="mistakes_finetuned")
    p.add_argument("--first-flip", type=int, default=0, help="mistakes_finetuned: flips from this one on (held out)")
    p.add_argument("--family", default="demo", help="mistakes_finetuned: the scene family (bench/label_efficiency.py)")
    p.add_argument("--finetune-epochs", type=int, default=60, help="mistakes_finetuned (at most 600 steps a network)")
    args = p.parse_args()
    load_start = os.getloadavg()
    figures: dict = {"parts": args.parts}
    if "mistakes_finetuned" in args.parts:
        from labeling.ml.backbone import ModelConfig

        if args.family == "demo":
            scenes = _scenes(0, args.images)
            images, labels = _square([s for s, _ in scenes]), np.array([y for _, y in scenes])
            pool = _square([s for s, _ in _scenes(args.images, 1000)])
        else:  # another family, rendered as bench/label_efficiency.py renders it (its own 32 px squares)
            from bench.label_efficiency import render

            images, labels = render(args.family, 0, args.images, 32)
            pool, _ = render(args.family, args.images, 1000, 32)
        small = args.stem == "small"
        trained, _, info = _pretrained(np.concatenate([images, pool]), args.budget, width=args.width, small_stem=small)
        print(f"pretraining for the fine-tuned scores: {info}", flush=True)
        model = ModelConfig(resolution=images.shape[1], small_stem=small, width=args.width)
        figures["mistakes_finetuned"] = {
            "pretraining": {**info, "budget_s": args.budget},
            "family": args.family,
            "images": args.images,
            "flipped": args.images // 20,
            **mistakes_finetuned(
                trained,
                model,
                images,
                labels,
                flips=args.flips,
                epochs=args.finetune_epochs,
                first_flip=args.first_flip,
            ),
        }
    if {"mistakes", "duplicates"} & set(args.parts):
        t = time.perf_counter()
        scenes = _scenes(0, args.images)
        pool = _scenes(args.images, 1000)
        images, labels = _square([s for s, _ in scenes]), np.array([y for _, y in scenes])
        trained, random_init, info = _pretrained(np.concatenate([images, _square([s for s, _ in pool])]), args.budget)
        print(f"scenes and pretraining: {time.perf_counter() - t:.0f} s ({info})", flush=True)
        figures["pretraining"] = {**info, "budget_s": args.budget, "images": args.images + 1000}
        backbones = {"barlow_twins": trained, "random_init": random_init}
        if "mistakes" in args.parts:
            features = {name: _features(b, images) for name, b in backbones.items()}
            figures["mistakes"] = {"images": args.images, "flipped": args.images // 20, **mistakes(features, labels)}
        if "duplicates" in args.parts:
            figures["duplicates"] = {"demo": duplicates(backbones, "demo")}
            if "clutter" in args.families:  # a backbone of its own, pretrained on the family's scenes
                t = time.perf_counter()
                trained, random_init, info = _pretrained(_square(_clutter(20_000, args.images + 1000)), args.budget)
                print(f"clutter scenes and pretraining: {time.perf_counter() - t:.0f} s ({info})", flush=True)
                figures["duplicates"]["clutter"] = {
                    "pretraining": info,
                    **duplicates({"barlow_twins": trained, "random_init": random_init}, "clutter"),
                }
    if "duplicates_speed" in args.parts:
        figures["duplicates_speed"] = duplicates_speed(args.duplicate_sizes)
    if "latency" in args.parts:
        figures["latency"] = latency(args.sizes)
        if args.ann:
            figures["ann"] = ann_latency(args.sizes)
    if "bulk" in args.parts:
        figures["bulk"] = bulk()
    figures["load_average"] = machine_load(load_start)
    figures["load_average"]["note"] = rounded(os.getloadavg())
    write_result(args.name, figures)


if __name__ == "__main__":
    sys.exit(main())
