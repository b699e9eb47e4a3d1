"""Labels saved by the queue's orders (issue 17): a simulated annotator labels the images the queue
serves, answering with the ground truth, and the probe's test mAP is measured after each batch.

    python -m bench.label_saving [--families demo clutter_large_solid] [--budget 300] [--pool 3000] [--test 1000]
                                 [--batch 50] [--most 400] [--seeds 3] [--orders diverse hybrid_x8 ...]
                                 [--features-cache DIR]

Per family (the demo scenes, annotator/demo/scenes.py, and the clutter family, annotator/demo/clutter.py,
drawn by another generator): a pool of unlabeled scenes and held-out test scenes, a Barlow Twins
backbone pretrained for ``--budget`` seconds on the pool with the app's CPU preset (32 px), and the
pool's and the test set's features as the preset embeds them. From no labels, batches of ``--batch``
images are taken in each order until ``--most`` are labeled:

- ``random``: uniformly from the unlabeled pool (the baseline);
- ``uncertain``: the first batch at random (no model yet), then the app's uncertainty order
  (labeling.ml.active.uncertainty of the probe's probabilities at its thresholds), most uncertain first;
- ``hybrid``: the first batch "diverse first" (greedy k-center over the pool, the queue's cold-start
  order, from a first pick the seed chooses), then the queue's hybrid order
  (labeling.ml.curation.hybrid_order: the 4x most uncertain, k-center among them away from the
  labeled images).

After each batch the probe (labeling.ml.probe.fit_probe, as the worker fits it) is fitted on the
labeled images and scored on the test set. The figures: each order's mean mAP curve over
``--seeds`` (the random picks and the first batch of ``uncertain`` change with the seed), and the
labels the hybrid order needs to reach the mAP that random reaches with ``--most`` labels.
Target: <= 250 of 400 on both families. Writes bench/results/label_saving_<families>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from bench._util import machine_load, write_result

ORDERS = ("random", "uncertain", "hybrid")
# Also measurable (--orders): "diverse", k-center away from the labeled images for every batch
# (the cold-start order, continued; no model), and "hybrid_xF", the hybrid order drawing from the
# F x batch most uncertain images instead of the app's 4 x.
EXTRA_ORDERS = ("diverse", "hybrid_x2", "hybrid_x8", "hybrid_x16")


def _features(backbone, images: np.ndarray) -> np.ndarray:
    from labeling.ml.presets import feature_options
    from labeling.ml.embed import embed_images
    from labeling.ml.presets import PRESETS

    return embed_images(backbone, images, device="cpu", **feature_options(PRESETS["cpu"])).astype(np.float32)


def _test_map(probe, x_test: np.ndarray, y_test: np.ndarray) -> float:
    from labeling.ml.metrics import average_precision, rank

    ap = average_precision(rank(y_test, probe.predict_proba(x_test)))
    ap = ap[np.isfinite(ap)]
    return float(ap.mean()) if len(ap) else float("nan")


def _next_batch(order: str, x: np.ndarray, labeled: np.ndarray, probe, batch: int, rng) -> np.ndarray:
    """The next ``batch`` pool rows in ``order``; ``probe``: the one fitted on the labeled rows (None at first)."""
    from labeling.ml.active import uncertainty
    from labeling.ml.curation import hybrid_order, k_center

    pool = np.flatnonzero(~labeled)
    if order == "random" or (order == "uncertain" and probe is None):
        return rng.choice(pool, batch, replace=False)
    if probe is None:  # "hybrid*" and "diverse": diverse first
        return pool[k_center(x[pool], batch, first=int(rng.integers(len(pool))))]  # the seed picks the first
    if order == "diverse":
        return pool[k_center(x[pool], batch, centres=x[labeled])]
    u = uncertainty(probe.predict_proba(x[pool]), probe.thresholds)
    if order == "uncertain":
        return pool[np.argsort(-u, kind="stable")[:batch]]
    wider = {"pool_factor": int(order.removeprefix("hybrid_x"))} if order.startswith("hybrid_x") else {}
    return pool[hybrid_order(x[pool], u, batch, centres=x[labeled], **wider)]


def curves(x, y, x_test, y_test, *, batch: int, most: int, seeds: int, orders=ORDERS) -> dict:
    from labeling.ml.probe import fit_probe

    sizes = list(range(batch, most + 1, batch))
    out: dict = {"labels": sizes}
    for order in orders:
        runs = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            labeled, probe, curve = np.zeros(len(x), bool), None, []
            for _ in sizes:
                labeled[_next_batch(order, x, labeled, probe, batch, rng)] = True
                probe = fit_probe(x[labeled], y[labeled])  # as the worker refits; it also picks the next batch
                curve.append(_test_map(probe, x_test, y_test))
            runs.append(curve)
        mean = np.mean(runs, axis=0)
        out[order] = {"mean": [round(float(m), 4) for m in mean], "runs": [[round(v, 4) for v in r] for r in runs]}
        print(f"  {order:9s} " + " ".join(f"{n}:{m:.3f}" for n, m in zip(sizes, mean)), flush=True)
    goal = out["random"]["mean"][-1]
    out["random_at_most"] = goal
    for order in orders[2:]:  # "hybrid" and any others measured
        out[f"{order}_labels_to_reach_it"] = next((n for n, m in zip(sizes, out[order]["mean"]) if m >= goal), None)
    reached = out["hybrid_labels_to_reach_it"]
    out["met"] = reached is not None and reached <= 250 * most / 400
    return out


def main() -> None:
    load_start = os.getloadavg()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--families",
        nargs="+",
        default=["demo", "clutter_large_solid"],
        choices=["demo", "clutter", "clutter_large_solid"],
    )
    p.add_argument("--budget", type=float, default=300.0, help="pretraining seconds per family (CPU preset)")
    p.add_argument("--pool", type=int, default=3000)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--most", type=int, default=400)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--orders", nargs="+", choices=EXTRA_ORDERS, default=[], help="also measure these orders")
    p.add_argument("--features-cache", help="a folder: save each family's features there, or reuse them if saved")
    p.add_argument("--name", default=None)
    args = p.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench.curation import _pretrained
    from bench.label_efficiency import render
    from labeling.ml.presets import PRESETS

    resolution = PRESETS["cpu"]["resolution"]
    figures: dict = {
        "pool": args.pool,
        "test": args.test,
        "batch": args.batch,
        "most": args.most,
        "seeds": args.seeds,
        "budget_s": args.budget,
        "features": PRESETS["cpu"].get("features", "last"),
        "orders": [*ORDERS, *args.orders],
        "target": "hybrid reaches random's mAP at 400 labels with <= 250 labels, on both families",
    }
    for family in args.families:
        t = time.perf_counter()
        pool, y = render(family, 0, args.pool, resolution)
        test, y_test = render(family, 50_000, args.test, resolution)
        key = f"label_saving_{family}_p{args.pool}_t{args.test}_b{args.budget:g}.npz"
        cached = args.features_cache and os.path.join(args.features_cache, key)
        if cached and os.path.exists(cached):  # the same scenes and pretraining budget: reuse its features
            saved = np.load(cached)
            x, x_test = saved["x"], saved["x_test"]
            info = json.loads(str(saved["info"])) | {"features_from": cached}
        else:
            backbone, _, info = _pretrained(pool, args.budget)
            x, x_test = _features(backbone, pool), _features(backbone, test)
            if cached:
                os.makedirs(args.features_cache, exist_ok=True)
                np.savez(cached, x=x, x_test=x_test, info=json.dumps(info))
        print(f"{family}: scenes, pretraining and features in {time.perf_counter() - t:.0f} s ({info})", flush=True)
        figures[family] = {
            "pretraining": info,
            **curves(
                x, y, x_test, y_test, batch=args.batch, most=args.most, seeds=args.seeds, orders=(*ORDERS, *args.orders)
            ),
        }
        f = figures[family]
        print(
            f"{family}: random reaches {f['random_at_most']:.3f} with {args.most}; hybrid reaches it with "
            f"{f['hybrid_labels_to_reach_it']} labels (target <= 250): {'met' if f['met'] else 'NOT met'}",
            flush=True,
        )
    figures["met"] = all(figures[f]["met"] for f in args.families)
    figures["load_average"] = machine_load(load_start)
    write_result(args.name or "label_saving_" + "_".join(args.families), figures)


if __name__ == "__main__":
    sys.exit(main())
