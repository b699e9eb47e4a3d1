"""Three levers of the CPU recipe that bench/label_efficiency.py does not turn, measured at 200 labels:

- ``--crop-min`` and ``--batch``: the pretraining's crop scale (the preset's 0.5; on the H200, 0.5
  beat 0.2 by 0.17 mAP) and its batch (the preset's 64; these runs and label_efficiency on one
  thread made it 256 on 2026-12-06, and label_efficiency's second seeds and the clutter family
  brought it back to 64 the same day);
- ``--probe-resolutions``: the frozen features of the 32 px backbone read at higher input sizes (a
  network trained on zoomed-in crops may see better at a larger test size: Touvron et al. 2019);
- ``--finetune-resolutions``: the backbone fine-tuned end to end on the 200 labels at those sizes
  (label_efficiency's recipe: BCE, one-cycle AdamW, 60 epochs), against the same from scratch.

The pretraining runs for ``--epochs`` over the pool and the labeled images (not a time budget: the
figures do not depend on what else ran on the machine; 80 epochs at batch 64, or 125 at 256, are
about what a quiet 2-core machine fits into the preset's 10 minutes). Everything else is the CPU preset.

    python -m bench.recipe_variants --batch 64                       # the preset's recipe, all reads
    python -m bench.recipe_variants --batch 64 --crop-min 0.8 --probe-resolutions 32 --finetune-resolutions
    python -m bench.recipe_variants --batch 256 --probe-resolutions 32 --finetune-resolutions
    python -m bench.recipe_variants --batch 256 --epochs 125 --seed 1 --probe-resolutions 32 --finetune-resolutions

Results: bench/results/recipe_variants_<family>_crop<c>_batch<b>.json.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from bench._util import machine_load, pretrain_timed, write_result
from bench.label_efficiency import SEED, head_scores, render, train_supervised
from labeling.ml.backbone import ModelConfig
from labeling.ml.embed import embed_images
from labeling.ml.metrics import evaluate
from labeling.ml.presets import PRESETS
from labeling.ml.probe import fit_probe
from labeling.ml.train import PretrainConfig, Runtime, build_model

LABELED, TEST, POOL = 200, 500, 1500


def main() -> None:
    args = _args()
    load_start = os.getloadavg()
    preset = PRESETS["cpu"]
    model = ModelConfig(resolution=preset["resolution"], small_stem=False, projector=tuple(preset["projector"]))
    config = PretrainConfig(
        model=model,
        epochs=args.epochs,
        batch_size=args.batch,
        warmup_epochs=preset["warmup_epochs"],
        lr_weights=preset["lr_weights"],
        seed=args.seed,
        crop_scale=(args.crop_min, 1.0),
        colour=preset["colour"],
        time_budget_s=None,
    )
    sizes = sorted({model.resolution, *args.probe_resolutions, *args.finetune_resolutions})
    # Scene k is the same image at every size: labeled 0-199, test 400-899, pool 900-2399.
    labeled = {r: render(args.family, 0, LABELED, r) for r in sizes}
    test = {r: render(args.family, 400, TEST, r) for r in sizes}
    pool = render(args.family, 900, POOL, model.resolution)
    figures: dict = {"family": args.family, "config": config.to_dict(), "labeled": LABELED, "test": TEST}

    def report(p) -> None:
        print(f"  step {p.step} loss {p.loss:.1f} {p.images_per_s:.0f} img/s", flush=True)

    runtime = Runtime(device="cpu", log_every=10**9, progress_every_s=60, on_progress=report)
    run, seconds = pretrain_timed(config, pool[0], labeled[model.resolution][0], runtime)
    figures["pretraining"] = {"steps": len(run.loss_history), "seconds": round(seconds, 1), "status": run.status}
    print(f"pretraining: {figures['pretraining']}", flush=True)
    backbones = {"barlow_twins": run.model.backbone, "random": build_model(config).backbone}

    figures["probe_map"] = {}  # multi_tta features, the app's probe
    for name, backbone in backbones.items():
        for r in args.probe_resolutions:
            x_lab, y_lab = labeled[r]
            features = [embed_images(backbone, x, multi_layer=True, flip_tta=True) for x in (x_lab, test[r][0])]
            probe = fit_probe(features[0].astype(np.float32), y_lab)
            score = evaluate(test[r][1], probe.predict_proba(features[1].astype(np.float32)), probe.thresholds).map
            figures["probe_map"][f"{name}@{r}"] = round(float(score), 4)
            print(f"probe, {name} at {r} px: {score:.4f}", flush=True)

    figures["finetune_map"] = {}  # the network's own head after training on the labels
    for name, init, lr in (("barlow_twins", backbones["barlow_twins"], 1e-3), ("scratch", None, 2e-3)):
        for r in args.finetune_resolutions:
            x_lab, y_lab = labeled[r]
            spec = ModelConfig(resolution=r, small_stem=False, projector=model.projector)
            backbone, head, info = train_supervised(
                spec, x_lab, y_lab, epochs=60, budget_s=3600, lr=lr, device="cpu", init=init
            )
            score = evaluate(
                test[r][1], head_scores(backbone, head, test[r][0], "cpu"), np.full(y_lab.shape[1], 0.5)
            ).map
            figures["finetune_map"][f"{name}@{r}"] = {"map": round(float(score), 4), **info}
            print(f"fine-tuned, {name} at {r} px: {score:.4f} ({info})", flush=True)
    figures["chance_map"] = round(float(test[model.resolution][1].mean()), 4)
    figures["load_average"] = machine_load(load_start)
    figures["threads"] = torch.get_num_threads()
    write_result(args.name or f"recipe_variants_{args.family}_crop{args.crop_min}_batch{args.batch}", figures)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=("demo", "clutter"), default="demo")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--batch", type=int, default=PRESETS["cpu"]["batch_size"])
    p.add_argument("--crop-min", type=float, default=PRESETS["cpu"]["crop_min"])
    p.add_argument("--probe-resolutions", type=int, nargs="*", default=[32, 48, 64])
    p.add_argument("--finetune-resolutions", type=int, nargs="*", default=[32, 64])
    p.add_argument("--seed", type=int, default=SEED, help="the pretraining's (and the random weights') seed")
    p.add_argument("--name", help="results file name")
    return p.parse_args()


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"{time.perf_counter() - t:.0f} s")
