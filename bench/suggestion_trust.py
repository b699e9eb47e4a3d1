"""Can the suggestions be trusted? Precision and coverage of the confident suggestions, the
calibration error, and labels per image suggested vs true, on held-out demo scenes.

The probe is fitted on the labeled images' features exactly as a probe run does (labeling.ml.probe),
then calibrated and thresholded by the same pure functions the pipeline uses (labeling.ml.calibrate,
labeling.ml.confidence; no decisions, since nobody has decided yet). The held-out test scenes are
never seen by the probe, its calibration or its thresholds. For comparison, the figures at the
F1-optimal thresholds the app used before.

Features: the random-weight backbone (the floor; what a model that learned nothing gives) and a
Barlow Twins pretraining of ``--epochs`` on the pool (0 to skip it).

    python -m bench.suggestion_trust                      # CPU: 32 px, 1000-image pool, 6 BT epochs
    python -m bench.suggestion_trust --epochs 0           # random weights only (a minute)

``trust_figures`` is the small, additive function other benchmarks (label_efficiency) may call
with their own features.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench._util import machine_load, write_result

TARGET = 0.9


def trust_figures(
    f_train: np.ndarray,
    y_train: np.ndarray,
    f_test: np.ndarray,
    y_test: np.ndarray,
    target: float = TARGET,
    names: list[str] | None = None,
    scorer: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Fit, calibrate and threshold on the labeled features; measure on the test ones.
    ``scorer``: (out-of-fold scores of the labeled images, scores of the test images) of another
    model (a fine-tuned network: bench/finetune_scorer.py), calibrated and thresholded in its place;
    the probe then only says which labels can be trained."""
    from labeling.ml.calibrate import cross_fitted, expected_calibration_error, fit_platt
    from labeling.ml.confidence import label_lift, near_chance, precision_threshold, still_learning
    from labeling.ml.metrics import evaluate
    from labeling.ml.probe import best_f1_thresholds, fit_probe

    y_train, y_test = np.asarray(y_train).astype(bool), np.asarray(y_test).astype(bool)
    probe = fit_probe(f_train, y_train)
    t = np.flatnonzero(probe.trained)
    raw_test = probe.predict_proba(f_test)
    if scorer is not None and len(t):
        probe.oof_scores, raw_test = scorer[0].astype(np.float32), scorer[1]
        probe.thresholds[t] = best_f1_thresholds(y_train[:, t], probe.oof_scores[:, t])
    out = {
        "labeled": len(y_train),
        "test": len(y_test),
        "target": target,
        "trained_labels": int(len(t)),
        "true_labels_per_image": float(y_test.sum(1).mean()),
    }
    if not len(t):
        return {**out, "still_learning": "no trainable label"}
    oof = probe.oof_scores[:, t]
    cv = evaluate(y_train[:, t], oof, probe.thresholds[t])
    platt = fit_platt(y_train[:, t], oof)
    held = cross_fitted(y_train[:, t], oof)
    test_cal = platt.apply(raw_test[:, t])
    thresholds, labels = np.full(len(t), np.inf), []
    for i, j in enumerate(t):
        lift = label_lift(y_train[:, j], cv.ap[i])
        result = precision_threshold(y_train[:, j], held[:, i], target)
        confident = result.confident and not near_chance(lift)
        thresholds[i] = result.threshold if confident else np.inf
        labels.append(
            {
                "label": names[j] if names else str(j),
                "trained": True,
                "positives": int(probe.positives[j]),
                "near_chance": near_chance(lift),
                "lift": lift,
                "confident": confident,
                "oof_lower_bound": result.lower_bound,
            }
        )
    predicted = test_cal >= thresholds
    truth = y_test[:, t]
    hits, shown = int((predicted & truth).sum()), int(predicted.sum())
    f1_predicted = raw_test[:, t] >= probe.thresholds[t]
    return {
        **out,
        "cv_map": cv.map,
        "test_map": evaluate(truth, test_cal, thresholds).map,
        "confident": {
            "labels": int(np.isfinite(thresholds).sum()),
            "precision": hits / shown if shown else None,
            "suggestions": shown,
            # Share of test images with at least one confident suggestion, and per label.
            "coverage": float(predicted.any(1).mean()),
            "coverage_per_label": [float(c) for c in predicted.mean(0)],
            "labels_per_image": float(predicted.sum(1).mean()),
        },
        "f1_thresholds_before": {
            "precision": float((f1_predicted & truth).sum() / max(f1_predicted.sum(), 1)),
            "labels_per_image": float(f1_predicted.sum(1).mean()),
        },
        "ece_test": {
            "uncalibrated": expected_calibration_error(truth, raw_test[:, t]),
            "calibrated": expected_calibration_error(truth, test_cal),
        },
        "ece_cross_fitted_oof": expected_calibration_error(y_train[:, t], held),
        "still_learning": still_learning(labels),
        "labels": labels,
    }


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    import torch

    from annotator.demo.scenes import LABELS
    from bench.probe_quality import scenes
    from labeling.ml.backbone import ModelConfig
    from labeling.ml.embed import embed_images
    from labeling.ml.train import PretrainConfig, Runtime, build_model, pretrain

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labeled", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--target", type=float, default=TARGET)
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda (a GPU run: e.g. --pool 10000 --resolution 64 --epochs 60)"
    )
    parser.add_argument("--load", default="", help="a note on what else ran on the machine (written to the JSON)")
    args = parser.parse_args()
    torch.manual_seed(0)
    most = max(args.labeled)
    t = time.perf_counter()
    labeled = scenes(0, most, args.resolution, 96)
    test = scenes(most, args.test, args.resolution, 96)
    pool = scenes(most + args.test, args.pool, args.resolution, 96)
    print(f"scenes rendered in {time.perf_counter() - t:.0f} s")
    config = PretrainConfig(
        model=ModelConfig(resolution=args.resolution, small_stem=False, projector=(512, 512, 512)),
        epochs=max(args.epochs, 1),
        batch_size=128,
        warmup_epochs=1,
        seed=0,
    )
    backbones = {"random": build_model(config).backbone}
    seconds = {}
    if args.epochs > 0:
        t = time.perf_counter()
        run = pretrain(config, np.concatenate([pool[0], labeled[0]]), Runtime(device=args.device, log_every=50))
        seconds["barlow_twins_pretrain"] = round(time.perf_counter() - t, 1)
        backbones["barlow_twins"] = run.model.backbone
    results = {}
    for name, backbone in backbones.items():
        f_labeled = embed_images(backbone, labeled[0], device=args.device)
        f_test = embed_images(backbone, test[0], device=args.device)
        for n in args.labeled:
            r = trust_figures(f_labeled[:n], labeled[1][:n], f_test, test[1], args.target, names=list(LABELS))
            results[f"{name}/{n}"] = r
            c = r.get("confident", {})
            print(
                f"{name}, {n} labeled: CV mAP {r.get('cv_map')}, confident labels {c.get('labels')}, "
                f"precision {c.get('precision')}, coverage {c.get('coverage')}, labels/image "
                f"{c.get('labels_per_image')} (true {r['true_labels_per_image']:.2f}; F1 thresholds gave "
                f"{r.get('f1_thresholds_before', {}).get('labels_per_image')}), ECE {r.get('ece_test')}, "
                f"abstain: {r.get('still_learning')}"
            )
    kind = "gpu" if args.device.startswith("cuda") else "cpu"
    write_result(
        f"suggestion_trust_{kind}_r{args.resolution}_e{args.epochs}",
        {
            "scenes": "demo scenes (annotator/demo/scenes.py); the second scene family (recipe helper) was not "
            "available on this branch",
            "sizes": {"labeled": args.labeled, "test": args.test, "pool": args.pool, "resolution": args.resolution},
            "pretrain_epochs": args.epochs,
            "seconds": seconds,
            "results": results,
            "load_average": machine_load(load_start),
            "note": args.load,
        },
    )


if __name__ == "__main__":
    main()
