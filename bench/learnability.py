"""How far can any recipe go on a scene family? The ceiling of a recipe-free oracle: the same
ResNet-18 trained from scratch with BCE (bench.label_efficiency.train_supervised) on many labels
(4,000 by default, twenty times the 200 the targets are measured at), scored on 500 held-out scenes.

A family on which this oracle stays near chance cannot tell pretraining recipes apart at 200
labels: every method will sit at chance there, whatever it learns. That is a fact about the family
at that resolution (how many pixels its labeled objects keep), not about a recipe.

    python -m bench.learnability                                # demo and clutter at 32 px, clutter at 64 px
    python -m bench.learnability --runs demo:32 clutter:64 --labels 4000 --epochs 12

Results: bench/results/learnability_cpu.json (the machine's load is recorded with the figures).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from bench._util import machine_load, write_result
from bench.label_efficiency import FAMILIES, _family, head_scores, render, train_supervised
from labeling.ml.backbone import ModelConfig
from labeling.ml.metrics import evaluate

TEST_START = 200_000  # held-out scenes, far from the training ones
TRAIN_START = 100_000


def main() -> None:
    args = _args()
    load_start = os.getloadavg()
    figures: dict = {"labels": args.labels, "test": args.test, "lr": args.lr, "runs": {}}
    for spec in args.runs:
        family, resolution = spec.split(":")
        if family not in FAMILIES:
            raise SystemExit(f"unknown family {family!r}: {', '.join(FAMILIES)}")
        res = int(resolution)
        x, y = render(family, TRAIN_START, args.labels, res)
        x_test, y_test = render(family, TEST_START, args.test, res)
        model = ModelConfig(resolution=res, small_stem=False, projector=(512, 512, 512))
        t = time.perf_counter()
        backbone, head, info = train_supervised(
            model, x, y, epochs=args.epochs, budget_s=args.budget, lr=args.lr, device=args.device
        )
        scores = head_scores(backbone, head, x_test, args.device)
        result = evaluate(y_test, scores, np.full(y_test.shape[1], 0.5))
        row = {
            "map": round(float(result.map), 4),
            "chance_map": round(float(y_test.mean()), 4),  # a constant score's AP is the prevalence
            "ap": {name: None if a is None else round(a, 3) for name, a in zip(_family(family).LABELS, result.ap)},
            "epochs": info["epochs"],
            "seconds": round(time.perf_counter() - t, 1),
        }
        figures["runs"][spec] = row
        print(f"{spec}: {row}", flush=True)
    figures["load"] = machine_load(load_start)
    figures["threads"] = torch.get_num_threads()
    write_result(args.name, figures)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", default=["demo:32", "clutter:32", "clutter:64"], help="family:px")
    p.add_argument("--labels", type=int, default=4000)
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--budget", type=float, default=900.0, help="seconds per run (the epochs end it first)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--name", default="learnability_cpu")
    return p.parse_args()


if __name__ == "__main__":
    main()
