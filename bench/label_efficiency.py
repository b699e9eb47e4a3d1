"""Suggestions that save labels: on the demo scenes (known ground truth), the probe's test mAP with
50, 100, 200 and 400 labeled images on Barlow Twins features vs the same network's random-weight
features, and the precision and recall of the suggested labels (at the probe's per-label
thresholds) on the held-out images. One pretraining serves every size.

    python -m bench.label_efficiency [--device cpu] [--sizes 50 100 200 400]

Sizes, resolution and pretraining settings follow bench/probe_quality.py's presets (CPU: 32 px,
standard stem, 24 epochs on a 1,500-image pool; GPU: full size). Pretraining sees the pool and the
labeled images without their labels, never the test images.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from bench._util import write_result
from bench.probe_quality import PRESETS, STEMS, scenes
from labeling.ml.backbone import ModelConfig
from labeling.ml.embed import embed_images
from labeling.ml.metrics import evaluate
from labeling.ml.probe import fit_probe
from labeling.ml.train import PretrainConfig, Runtime, build_model, pretrain

SEED = 0


def main() -> None:
    args = _args()
    model = ModelConfig(resolution=args.resolution, small_stem=STEMS[args.stem],
                        projector=tuple(int(d) for d in args.projector.split("-")))
    config = PretrainConfig(model=model, epochs=args.epochs, batch_size=args.batch, warmup_epochs=args.warmup_epochs,
                            lr_weights=args.lr_weights, seed=SEED, crop_scale=(args.crop_min, 1.0))
    most = max(args.sizes)
    labeled = scenes(0, most, args.resolution, 256)
    test = scenes(most, args.test, args.resolution, 256)
    pool = scenes(most + args.test, args.pool, args.resolution, 256)
    chance = float(test[1].mean(axis=0).mean())
    t = time.perf_counter()
    run = pretrain(config, np.concatenate([pool[0], labeled[0]]), Runtime(device=args.device, log_every=100))
    seconds = time.perf_counter() - t
    backbones = {"barlow_twins": run.model.backbone, "random": build_model(config).backbone}
    features = {name: (embed_images(b, labeled[0], device=args.device), embed_images(b, test[0], device=args.device))
                for name, b in backbones.items()}
    curve = {name: {} for name in backbones}
    quality = {}
    for n in sorted(args.sizes):
        for name, (f_labeled, f_test) in features.items():
            probe = fit_probe(f_labeled[:n], labeled[1][:n])
            probs = probe.predict_proba(f_test)
            curve[name][n] = evaluate(test[1], probs, probe.thresholds).map
            if name == "barlow_twins":
                quality[n] = _precision_recall(test[1], probs >= probe.thresholds)
        print(f"{n:>4} labeled: mAP BT {curve['barlow_twins'][n]:.3f}  random {curve['random'][n]:.3f}  "
              f"suggestions precision {quality[n]['micro_precision']:.3f} recall {quality[n]['micro_recall']:.3f}")
    print(f"chance {chance:.3f}; pretraining {seconds:.0f} s on {args.device}")
    write_result(args.name or f"label_efficiency_{'gpu' if args.device.startswith('cuda') else 'cpu'}", {
        "chance_map": chance, "map": {k: {str(n): v for n, v in c.items()} for k, c in curve.items()},
        "suggestions_at_thresholds": {str(n): q for n, q in quality.items()},
        "pretrain_seconds": round(seconds, 1), "pretrain_config": config.to_dict(),
        "sizes": {"pool": args.pool, "test": args.test, "labeled": sorted(args.sizes)},
        "note": "CPU shared with other work while measured" if args.device == "cpu" else ""})


def _precision_recall(truth: np.ndarray, predicted: np.ndarray) -> dict:
    tp = (truth & predicted).sum(axis=0)
    fp = (~truth & predicted).sum(axis=0)
    fn = (truth & ~predicted).sum(axis=0)
    return {"micro_precision": float(tp.sum() / max(tp.sum() + fp.sum(), 1)),
            "micro_recall": float(tp.sum() / max(tp.sum() + fn.sum(), 1)),
            "precision": [float(p) for p in tp / np.maximum(tp + fp, 1)],
            "recall": [float(r) for r in tp / np.maximum(tp + fn, 1)]}


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    for key in ("pool", "test", "resolution", "epochs", "warmup_epochs", "batch"):
        p.add_argument(f"--{key.replace('_', '-')}", type=int)
    p.add_argument("--stem", choices=sorted(STEMS))
    p.add_argument("--lr-weights", type=float)
    p.add_argument("--projector")
    p.add_argument("--crop-min", type=float, default=0.2, help="lowest crop area of the two views")
    p.add_argument("--name", help="results file name")
    args = p.parse_args()
    for key, value in PRESETS["gpu" if args.device.startswith("cuda") else "cpu"].items():
        if hasattr(args, key) and getattr(args, key) is None:
            setattr(args, key, value)
    return args


if __name__ == "__main__":
    sys.exit(main())
