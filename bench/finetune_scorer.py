"""Fine-tuned suggestions as a probe run makes them (labeling/ml/finetune.py), against the frozen
probe, on held-out scenes of either family.

For each labeled-set size: the frozen probe on the pretrained backbone's features (the preset's
``features``, as a pretraining embeds them); the app's fine-tuned scorer, cross-fitted on the same
labels (``cross_fit``: one network per fold for the out-of-fold scores, one on every label for the
test scenes); the two averaged; and the scorer a probe run chooses (``chosen``:
labeling.ml.metrics.choose_scorer on the out-of-fold mAPs of the networks' folds; nothing about the
test scenes decides it; ``kept_same_folds``: the earlier two-way choice, frozen or network). The
results that chose the rule (``..._seed{1,2,3}_ensemble.json``) predate it: seed 1's have no
``chosen``, seeds 2 and 3 record an earlier rule's (the best of the three). Each is calibrated and
thresholded as the app does (bench.suggestion_trust.trust_figures): test mAP, precision and coverage
of the confident suggestions at the default target, and the seconds the fine-tuning took.

    python -m bench.finetune_scorer --family demo                  # pretrains for the preset's 10 minutes
    python -m bench.finetune_scorer --family clutter_large_solid --save-backbone /tmp/c.pt
    python -m bench.finetune_scorer --family demo --load-backbone /tmp/demo.pt   # label_efficiency's too

Results: bench/results/finetune_scorer_<preset>_<family>.json.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

from bench._util import machine_load, write_result
from bench.label_efficiency import _family, finished, parser, pretrain_config, pretrained, scenes
from labeling.ml.train import build_model
from bench.suggestion_trust import trust_figures
from labeling.ml.presets import feature_options
from labeling.ml.embed import embed_images
from labeling.ml.finetune import VIEWS, FinetuneConfig, cross_fit, fit, predict
from labeling.ml.metrics import choose_scorer, evaluate
from labeling.ml.presets import PRESETS
from labeling.ml.probe import ProbeConfig, fit_probe


def _oof_map(y: np.ndarray, oof: np.ndarray, trained: np.ndarray) -> float:
    return evaluate(y[:, trained].astype(bool), oof[:, trained], np.full(int(trained.sum()), 0.5)).map


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--folds", type=int, default=FinetuneConfig.folds)
    p.add_argument("--ft-view", choices=sorted(VIEWS), default=FinetuneConfig.view)
    p.add_argument("--ft-lr", type=float, default=FinetuneConfig.lr)
    p.add_argument("--ft-epochs", type=int, default=FinetuneConfig.epochs)
    p.add_argument("--ft-max-steps", type=int, default=FinetuneConfig.max_steps)
    p.add_argument(
        "--floors-only",
        action="store_true",
        help="random weights and supervised from scratch alone (beside an earlier run on the same scenes and seed)",
    )
    p.set_defaults(sizes=[100, 200, 400])
    args = finished(p.parse_args())
    load_start = os.getloadavg()
    model, config = pretrain_config(args)
    sizes = sorted(args.sizes)
    labeled, test, pool = scenes(args, sizes, model.resolution)
    names = list(_family(args.family).LABELS)
    backbone, info = pretrained(args, config, pool, labeled)
    options = feature_options(PRESETS[args.preset])
    f_labeled, f_test = (embed_images(backbone, a, device=args.device, **options) for a in (labeled[0], test[0]))
    state = backbone.state_dict()
    # The floors beside it: the same architecture's random weights (frozen probe), and the same
    # cross-fitted network trained from them (supervised from scratch, the fine-tuning's recipe).
    random_backbone = build_model(config).backbone
    r_labeled, r_test = (embed_images(random_backbone, a, device=args.device, **options) for a in (labeled[0], test[0]))
    ft_config = FinetuneConfig(
        view=args.ft_view,
        folds=args.folds,
        epochs=args.ft_epochs,
        max_steps=args.ft_max_steps,
        lr=args.ft_lr,
        seed=args.seed,
    )
    out: dict = {}
    for n in sizes:
        y = labeled[1][:n]
        frozen = trust_figures(f_labeled[:n].astype(np.float32), y, f_test.astype(np.float32), test[1], names=names)
        probe = fit_probe(f_labeled[:n].astype(np.float32), y)
        t = probe.trained
        random_map = trust_figures(
            r_labeled[:n].astype(np.float32), y, r_test.astype(np.float32), test[1], names=names
        ).get("test_map")
        scratch = predict(fit(None, model, labeled[0][:n], y, ft_config, device=args.device), test[0])
        scratch_map = _oof_map(test[1], scratch, t)  # over the same trained labels
        if args.floors_only:
            out[str(n)] = {"test_map": {"frozen": frozen.get("test_map"), "random_weights": random_map,
                                        "supervised_from_scratch": scratch_map}}  # fmt: skip
            print(f"{n} labeled: frozen {frozen.get('test_map'):.3f} random weights {random_map:.3f}"
                  f" from scratch {scratch_map:.3f}", flush=True)  # fmt: skip
            continue
        start = time.perf_counter()
        net, oof = cross_fit(state, model, labeled[0][:n], y, ft_config, device=args.device)
        seconds = time.perf_counter() - start
        test_scores = predict(net, test[0], device=args.device)

        def figures(scorer: tuple[np.ndarray, np.ndarray]) -> dict:  # calibrated and thresholded as the app does
            return trust_figures(
                f_labeled[:n].astype(np.float32), y, f_test.astype(np.float32), test[1], names=names, scorer=scorer
            )

        finetuned = figures((oof, test_scores))
        oof_frozen, oof_ft = _oof_map(y, probe.oof_scores, t), _oof_map(y, oof, t)
        # The frozen probe on the fine-tuning's folds (its weight decay as chosen): the same rows
        # held out, the same share of labels to learn from.
        same = fit_probe(
            f_labeled[:n].astype(np.float32),
            y,
            ProbeConfig(folds=ft_config.folds, seed=ft_config.seed, weight_decays=(probe.weight_decay,)),
        )
        oof_frozen_same = _oof_map(y, same.oof_scores, t)
        # The two's probabilities averaged (the frozen probe's out-of-fold on the fine-tuning's folds).
        ens_oof = (same.oof_scores + oof) / 2
        ensemble = figures((ens_oof, (same.predict_proba(f_test.astype(np.float32)) + test_scores) / 2))
        oof_ens = _oof_map(y, ens_oof, t)
        kept = "finetuned" if oof_ft > oof_frozen else "frozen"
        kept_same = "finetuned" if oof_ft > oof_frozen_same else "frozen"
        # The app's choice (labeling.suggesting) from the out-of-fold mAPs on the same folds.
        chosen = choose_scorer({"features": oof_frozen_same, "finetuned": oof_ft, "ensemble": oof_ens})
        named = {"frozen": frozen, "finetuned": finetuned, "ensemble": ensemble}  # "frozen": the app's "features"
        out[str(n)] = {
            "oof_map": {
                "frozen": oof_frozen,
                "frozen_same_folds": oof_frozen_same,
                "finetuned": oof_ft,
                "ensemble": oof_ens,
            },
            "kept": kept,
            "kept_same_folds": kept_same,
            "chosen": chosen,
            "test_map": {
                "frozen": frozen.get("test_map"),
                "finetuned": finetuned.get("test_map"),
                "ensemble": ensemble.get("test_map"),
                "kept": (finetuned if kept == "finetuned" else frozen).get("test_map"),
                "kept_same_folds": (finetuned if kept_same == "finetuned" else frozen).get("test_map"),
                "chosen": named["frozen" if chosen == "features" else chosen].get("test_map"),
                "random_weights": random_map,
                "supervised_from_scratch": scratch_map,
            },
            "confident": {k: f.get("confident") for k, f in named.items()},
            "ece_test": {k: f.get("ece_test") for k, f in named.items()},
            "finetune_seconds": round(seconds, 1),
        }
        c_fr, c_ft = frozen.get("confident") or {}, finetuned.get("confident") or {}
        print(
            f"{n} labeled: oof {oof_frozen:.3f} ({oof_frozen_same:.3f} on its folds) / {oof_ft:.3f} -> {kept}"
            f" ({kept_same}); test mAP frozen {frozen.get('test_map'):.3f} (random weights {random_map:.3f},"
            f" from scratch {scratch_map:.3f})"
            f" fine-tuned {finetuned.get('test_map'):.3f} ensemble {ensemble.get('test_map'):.3f}"
            f" (oof {oof_ens:.3f}; chosen: {chosen}); confident precision {c_fr.get('precision')} /"
            f" {c_ft.get('precision')} coverage {c_fr.get('coverage')} / {c_ft.get('coverage')}; {seconds:.0f} s",
            flush=True,
        )
    write_result(
        args.name or f"finetune_scorer_{args.preset}_{args.family}",
        {
            "family": args.family,
            "labels": names,
            "chance_map": float(test[1].mean(axis=0).mean()),
            "features": PRESETS[args.preset].get("features"),
            "finetune": {**ft_config.__dict__},
            "sizes": out,
            "pretraining": {**info, "loaded_from": args.load_backbone, "config": config.to_dict()},
            "threads": torch.get_num_threads(),
            "load_average": machine_load(load_start),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
