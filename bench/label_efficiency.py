"""Suggestions that save labels, on two scene families with known ground truth: the probe's test mAP
with 50, 100, 200 and 400 labeled images on

- ``barlow_twins``: features of a backbone pretrained with the app's pretraining (labeling.ml.train)
  for a time budget, on the pool and the labeled images (never the test images);
- ``random``: the same network at its random initialisation (the floor);
- ``supervised``: the same network trained from scratch with BCE on the same labeled images (its
  own head's mAP and a probe on its features; the better counts), for at most ``--sup-epochs``
  epochs or ``--sup-budget`` seconds per size, whichever ends first;

and, on the two feature backbones, the feature variants of issue 13: ``last`` (the pooled last
stage, 512), ``multi`` (pooled layer2..layer4, 896), ``multi_tta`` (the same, averaged with the
mirror image), ``multi_max_tta`` and ``multi_avgmax_tta`` (each stage's maximum over positions
instead of its mean, or both: labeling/ml/embed.py's ``pool``) and ``+prop`` (label propagation
over the kNN graph of the multi_tta features of labeled + test images, labeling/ml/propagate.py,
averaged with the probe's probabilities).

    python -m bench.label_efficiency --family demo       # the demo's shapes (annotator/demo/scenes.py)
    python -m bench.label_efficiency --family clutter_large_solid  # the second family (FAMILIES below)
    python -m bench.label_efficiency --device cuda --preset gpu --family demo

The pretraining settings are the app's presets (labeling/ml/presets.py): on a CPU, 32 px through the
standard stem, sized by a 10-minute time budget; any flag overrides. Results:
bench/results/label_efficiency_<preset>_<family>.json. On a shared CPU a time budget buys fewer
steps than on an idle one, so a pass measured under contention is conservative.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from bench._util import machine_load, pretrain_timed, rounded, write_result
from annotator.demo import clutter
from labeling.ml.augment import normalize, to_float
from labeling.ml.backbone import RESNET18_WIDTH, ModelConfig, resnet18_backbone
from labeling.ml.barlow import DEFAULT_LAMBDA
from labeling.ml.cache import decode_square
from labeling.ml.embed import embed_images
from labeling.ml.finetune import supervised_epoch
from labeling.ml.metrics import evaluate
from labeling.ml.presets import COLOUR_STRENGTHS, PRESETS
from labeling.ml.probe import fit_probe
from labeling.ml.propagate import propagate
from labeling.ml.train import PretrainConfig, Runtime, build_model

SEED = 0  # training (pretraining, random weights, supervised): --seed
DATA_SEED = 0  # the scenes: the same images whatever --seed
# module, source px, keyword arguments of its render_scene. The clutter family itself is out of an
# oracle's reach at the CPU's 32 px (4,000 labels from scratch: 0.298 against a chance of 0.265, and
# 0.316 at 64 px for 30 epochs), so no recipe can be judged on it. The variants below were tried
# with that oracle alone (bench.learnability, 2026-12-06), before any recipe ran on them:
# objects as large as the demo's (clutter.LARGE) 0.339, with muted backgrounds 0.330, with parts
# that stand out from the background 0.364, and in one colour per object as well 0.396 at 12 epochs
# and 0.506 at 30 (the demo 0.533 and 0.781; chance 0.26). That last one, clutter_large_solid, is
# the second family of the targets from 2026-12-06 on: other objects, sizes, backgrounds and
# clutter than the demo's, and harder.
FAMILIES: dict[str, tuple[str, int, dict]] = {
    "demo": ("annotator.demo.scenes", 256, {}),
    "clutter": ("annotator.demo.clutter", 128, {}),
    "clutter_large": ("annotator.demo.clutter", 128, {"sizes": clutter.LARGE}),
    "clutter_large_muted": ("annotator.demo.clutter", 128, {"sizes": clutter.LARGE, "contrast": 0.3}),
    "clutter_muted": ("annotator.demo.clutter", 128, {"contrast": 0.3}),
    "clutter_large_stand": ("annotator.demo.clutter", 128, {"sizes": clutter.LARGE, "stand_out": True}),
    "clutter_stand": ("annotator.demo.clutter", 128, {"stand_out": True}),
    "clutter_large_solid": (
        "annotator.demo.clutter",
        128,
        {"sizes": clutter.LARGE, "stand_out": True, "one_colour": True},
    ),
}


def _family(name: str):
    import importlib

    return importlib.import_module(FAMILIES[name][0])


def render_scene(family: str, index: int, size: int):
    """Scene ``index`` of ``family`` at ``size`` px (its scene object: image, objects, labels)."""
    return _family(family).render_scene(index, seed=DATA_SEED, size=(size, size), **FAMILIES[family][2])


def _render(family: str, start: int, n: int, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    module, source = _family(family), FAMILIES[family][1]
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    labels = np.zeros((n, len(module.LABELS)), bool)
    for k in range(n):
        scene = render_scene(family, start + k, source)
        images[k] = decode_square(scene.image, resolution)  # as the cache stores them
        labels[k] = [name in scene.labels for name in module.LABELS]
    return images, labels


def render(family: str, start: int, n: int, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    workers = os.cpu_count() or 1
    if n < 256 or workers == 1:
        return _render(family, start, n, resolution)
    chunk = -(-n // (4 * workers))
    starts = list(range(start, start + n, chunk))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(
            pool.map(
                _render,
                [family] * len(starts),
                starts,
                [min(chunk, start + n - s) for s in starts],
                [resolution] * len(starts),
            )
        )
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def train_supervised(
    model: ModelConfig,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    budget_s: float,
    lr: float,
    device: str,
    init: torch.nn.Module | None = None,
    seed: int = SEED,
) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
    """ResNet-18 + linear head on the labeled images only (BCE, positive weights, view-1
    augmentations, one-cycle AdamW), for ``epochs`` or ``budget_s``, whichever ends first.
    ``init``: start from a copy of this backbone (fine-tuning) instead of random weights."""
    torch.manual_seed(seed)
    backbone = resnet18_backbone(small_stem=model.uses_small_stem, width=model.width).to(device)
    if init is not None:
        backbone.load_state_dict(init.state_dict())
    head = torch.nn.Linear(model.feature_dim, labels.shape[1]).to(device)
    opt = torch.optim.AdamW([*backbone.parameters(), *head.parameters()], lr=lr, weight_decay=5e-4)
    x_all = torch.from_numpy(images).to(device)
    y_all = torch.from_numpy(labels).float().to(device)
    pos = y_all.sum(0)
    pos_weight = (len(y_all) - pos).clamp(min=1) / pos.clamp(min=1)
    batch = min(64, len(x_all))
    per_epoch = max(1, len(x_all) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch)
    g = torch.Generator(device=device).manual_seed(seed)
    backbone.train()
    start, done = time.perf_counter(), 0
    for epoch in range(epochs):
        if time.perf_counter() - start > budget_s:
            break
        order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(seed + epoch))
        supervised_epoch(
            backbone,
            head,
            opt,
            sched,
            x_all,
            y_all,
            order=order,
            batch=batch,
            steps=per_epoch,
            pos_weight=pos_weight,
            generator=g,
        )
        done += 1
    return backbone.eval(), head.eval(), {"epochs": done, "seconds": round(time.perf_counter() - start, 1)}


@torch.inference_mode()
def head_scores(backbone: torch.nn.Module, head: torch.nn.Module, images: np.ndarray, device: str) -> np.ndarray:
    x = torch.from_numpy(images).to(device)
    out = [torch.sigmoid(head(backbone(normalize(to_float(x[i : i + 256]))))) for i in range(0, len(x), 256)]
    return torch.cat(out).float().cpu().numpy()


def _precision_recall(truth: np.ndarray, predicted: np.ndarray) -> dict:
    tp = (truth & predicted).sum()
    fp = (~truth & predicted).sum()
    fn = (truth & ~predicted).sum()
    return {
        "micro_precision": float(tp / max(tp + fp, 1)),
        "micro_recall": float(tp / max(tp + fn, 1)),
        "labels_per_image_suggested": float(predicted.sum(1).mean()),
        "labels_per_image_true": float(truth.sum(1).mean()),
    }


def variants(backbone: torch.nn.Module, labeled: tuple, test: tuple, sizes: list[int], device: str) -> dict:
    """mAP per labeled-set size of each feature variant on one backbone."""
    feats = {
        "last": [embed_images(backbone, a, device=device) for a in (labeled[0], test[0])],
        "multi": [embed_images(backbone, a, device=device, multi_layer=True) for a in (labeled[0], test[0])],
        "multi_tta": [
            embed_images(backbone, a, device=device, multi_layer=True, flip_tta=True) for a in (labeled[0], test[0])
        ],
        **{
            f"multi_{pool}_tta": [
                embed_images(backbone, a, device=device, multi_layer=True, flip_tta=True, pool=pool)
                for a in (labeled[0], test[0])
            ]
            for pool in ("max", "avgmax")
        },
    }
    out: dict = {name: {} for name in [*feats, "multi_tta+prop", "prop_only"]}
    suggestions: dict = {}
    for n in sizes:
        y = labeled[1][:n]
        for name, (f_lab, f_test) in feats.items():
            probe = fit_probe(f_lab[:n].astype(np.float32), y)
            probs = probe.predict_proba(f_test.astype(np.float32))
            out[name][str(n)] = evaluate(test[1], probs, probe.thresholds).map
            if name == "multi_tta":
                suggestions[str(n)] = _precision_recall(test[1], probs >= probe.thresholds)
                # Propagation over the graph of the labeled images and the images to be scored.
                graph = np.concatenate([f_lab[:n], f_test]).astype(np.float32)
                spread = propagate(graph, np.arange(n), y.astype(np.float32))[n:]
                out["prop_only"][str(n)] = evaluate(test[1], spread, np.full(y.shape[1], 0.5)).map
                out["multi_tta+prop"][str(n)] = evaluate(test[1], 0.5 * (probs + spread), np.full(y.shape[1], 0.5)).map
    return {"map": out, "suggestions_at_probe_thresholds": suggestions}


def pretrain_config(args: argparse.Namespace) -> tuple[ModelConfig, PretrainConfig]:
    """The preset's model and pretraining, with the command line's overrides."""
    preset = PRESETS[args.preset]
    model = ModelConfig(
        resolution=args.resolution or preset["resolution"],
        small_stem=preset["small_stem"] if args.stem is None else args.stem == "small",
        projector=tuple(args.projector or preset["projector"]),
        width=args.width or preset.get("width", RESNET18_WIDTH),
        lambd=args.lambd if args.lambd is not None else DEFAULT_LAMBDA,
    )
    budget = args.budget if args.budget is not None else preset["time_budget_s"]
    config = PretrainConfig(
        model=model,
        epochs=args.epochs or preset["epochs"],
        batch_size=args.batch or preset["batch_size"],
        warmup_epochs=preset["warmup_epochs"],
        lr_weights=preset["lr_weights"],
        seed=args.seed,
        crop_scale=(preset["crop_min"], 1.0),
        colour=args.colour or preset["colour"],
        time_budget_s=budget or None,
    )
    return model, config


def scenes(args: argparse.Namespace, sizes: list[int], r: int) -> tuple[tuple, tuple, tuple]:
    """(labeled, test, pool) scenes of the family at ``r`` px: the same images whatever the seed."""
    most = sizes[-1]
    t = time.perf_counter()
    labeled = render(args.family, 0, most, r)
    test = render(args.family, most, args.test, r)
    pool = render(args.family, most + args.test, args.pool, r)
    print(
        f"{args.family}: {most + args.test + args.pool} scenes rendered in {time.perf_counter() - t:.0f} s", flush=True
    )
    return labeled, test, pool


def pretrained(args: argparse.Namespace, config: PretrainConfig, pool: tuple, labeled: tuple) -> tuple:
    """(the Barlow Twins backbone, {steps, seconds, status, loss_first_last}): pretrained here on the
    pool and the labeled images (saved with --save-backbone), or loaded (--load-backbone)."""

    def report(p) -> None:
        print(
            f"  bt step {p.step} epoch {p.epoch} loss {p.loss:.1f} {p.images_per_s:.0f} img/s eta {p.eta_s or 0:.0f} s",
            flush=True,
        )

    if args.load_backbone:  # a pretraining saved by an earlier pass (--save-backbone): analysis only
        saved = torch.load(args.load_backbone, map_location="cpu", weights_only=False)
        bt_backbone = build_model(config).backbone
        bt_backbone.load_state_dict(saved["backbone"])
        info = {k: saved[k] for k in ("steps", "seconds", "status", "loss_first_last")}
        print(f"pretraining: loaded {args.load_backbone} ({info['steps']} steps, {info['seconds']:.0f} s)", flush=True)
        return bt_backbone, info
    runtime = Runtime(device=args.device, log_every=10**9, progress_every_s=60, on_progress=report)
    run, bt_s = pretrain_timed(config, pool[0], labeled[0], runtime)
    steps, bt_backbone = len(run.loss_history), run.model.backbone
    info = {
        "steps": steps,
        "seconds": bt_s,
        "status": run.status,
        "loss_first_last": [run.loss_history[0], run.loss_history[-1]] if steps else None,
    }
    print(f"pretraining: {steps} steps in {bt_s:.0f} s ({run.status})", flush=True)
    if args.save_backbone:
        torch.save({"backbone": bt_backbone.state_dict(), **info, "config": config.to_dict()}, args.save_backbone)
    return bt_backbone, info


def main() -> None:
    args = _args()
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    model, config = pretrain_config(args)
    sizes = sorted(args.sizes)
    most = sizes[-1]
    labeled, test, pool = scenes(args, sizes, model.resolution)
    chance = float(test[1].mean(axis=0).mean())
    load_before = os.getloadavg()
    bt_backbone, info = pretrained(args, config, pool, labeled)
    steps, bt_s, status, losses = info["steps"], info["seconds"], info["status"], info["loss_first_last"]
    load_during = os.getloadavg()

    results = {
        "barlow_twins": variants(bt_backbone, labeled, test, sizes, args.device),
        "random": variants(build_model(config).backbone, labeled, test, sizes, args.device),
    }
    for name in results:
        print(name, {v: {n: round(m, 3) for n, m in c.items()} for v, c in results[name]["map"].items()}, flush=True)

    def trained(init: torch.nn.Module | None, lr: float, label: str) -> dict:
        """Each size: the network trained with BCE on that many labels from ``init`` (None: from
        scratch), scored by its own head and by a probe on its features."""
        out: dict = {"probe": {}, "head": {}, "budget": {}}
        for n in sizes:
            backbone, head, spent = train_supervised(
                model,
                labeled[0][:n],
                labeled[1][:n],
                epochs=args.sup_epochs,
                budget_s=args.sup_budget,
                lr=lr,
                device=args.device,
                init=init,
                seed=args.seed,
            )
            f_lab, f_test = (embed_images(backbone, a, device=args.device) for a in (labeled[0][:n], test[0]))
            probe = fit_probe(f_lab.astype(np.float32), labeled[1][:n])
            out["probe"][str(n)] = evaluate(
                test[1], probe.predict_proba(f_test.astype(np.float32)), probe.thresholds
            ).map
            out["head"][str(n)] = evaluate(
                test[1], head_scores(backbone, head, test[0], args.device), np.full(labeled[1].shape[1], 0.5)
            ).map
            out["budget"][str(n)] = spent
            print(
                f"{n} labeled, {label}: probe {out['probe'][str(n)]:.3f} head {out['head'][str(n)]:.3f} ({spent})",
                flush=True,
            )
        return out

    supervised = trained(None, 2e-3, "supervised from scratch")
    # Barlow Twins, then fine-tuned end to end on the same labels by the same recipe as the
    # supervised baseline: only the starting weights differ.
    finetuned = trained(bt_backbone, args.finetune_lr, "Barlow Twins fine-tuned") if args.finetune_lr else None

    best_variant = max(results["barlow_twins"]["map"], key=lambda v: results["barlow_twins"]["map"][v].get("200", -1))
    at = "200" if 200 in sizes else str(most)
    bt, rnd = results["barlow_twins"]["map"], results["random"]["map"]
    sup = max(supervised["probe"][at], supervised["head"][at])
    targets = {
        "at_labels": int(at),
        "variant": best_variant,
        "bt": bt[best_variant][at],
        "random_same_variant": rnd[best_variant][at],
        "random_best_variant": max(c[at] for c in rnd.values()),
        "supervised_best": sup,
        "bt_minus_random_ge_0.15": bt[best_variant][at] - max(c[at] for c in rnd.values()) >= 0.15,
        "bt_ge_supervised": bt[best_variant][at] >= sup,
    }
    if finetuned:
        ft = max(finetuned["probe"][at], finetuned["head"][at])
        targets["bt_finetuned"] = ft
        targets["bt_finetuned_minus_random_ge_0.15"] = ft - max(c[at] for c in rnd.values()) >= 0.15
        targets["bt_finetuned_ge_supervised"] = ft >= sup
    print("targets at", at, "labels:", targets, flush=True)
    write_result(
        args.name or f"label_efficiency_{args.preset}_{args.family}",
        {
            "family": args.family,
            "labels": list(_family(args.family).LABELS),
            "chance_map": chance,
            "map": {
                "barlow_twins": bt,
                "random": rnd,
                "supervised_probe": supervised["probe"],
                "supervised_head": supervised["head"],
                **(
                    {"bt_finetuned_probe": finetuned["probe"], "bt_finetuned_head": finetuned["head"]}
                    if finetuned
                    else {}
                ),
            },
            "suggestions_at_probe_thresholds": {k: v["suggestions_at_probe_thresholds"] for k, v in results.items()},
            "targets": targets,
            "pretraining": {
                "seconds": round(bt_s, 1),
                "steps": steps,
                "status": status,
                "loaded_from": args.load_backbone,
                "images_per_step": config.batch_size,
                "config": config.to_dict(),
                "loss_first_last": losses,
            },
            "supervised_budget": supervised["budget"],
            "finetune": {"lr": args.finetune_lr, "budget": finetuned["budget"]} if finetuned else None,
            "sizes": {"pool": args.pool, "test": args.test, "labeled": sizes, "source_px": FAMILIES[args.family][1]},
            # Above the CPU count, other work shared the cores and a time budget bought fewer steps than on an
            # idle machine.
            "load_average": {
                **machine_load(load_start),
                "before_pretraining": rounded(load_before),
                "after_pretraining": rounded(load_during),
            },
        },
    )


def parser(doc: str | None = __doc__) -> argparse.ArgumentParser:
    """The pretraining and scene options (other benches add theirs: bench/finetune_scorer.py)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=sorted(FAMILIES), default="demo")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--preset", choices=sorted(PRESETS), help="default: from the device")
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    p.add_argument("--pool", type=int, help="unlabeled images (default: 1,500 CPU, 10,000 GPU)")
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--resolution", type=int)
    p.add_argument("--stem", choices=["small", "standard"])
    p.add_argument("--width", type=int, help="the backbone's first-stage channels (ResNet-18's own: 64)")
    p.add_argument("--projector", type=int, nargs="+", help="the projector's layer widths (default: the preset's)")
    p.add_argument("--lambd", type=float, help=f"the loss's off-diagonal weight (default {DEFAULT_LAMBDA})")
    p.add_argument("--epochs", type=int, help="the cap (with a budget) or the length (--budget 0)")
    p.add_argument("--batch", type=int)
    p.add_argument("--colour", choices=sorted(COLOUR_STRENGTHS), help="colour distortion (default: the preset's)")
    p.add_argument("--budget", type=float, help="pretraining seconds (0: train for --epochs); default: the preset's")
    p.add_argument("--sup-epochs", type=int, default=60)
    p.add_argument("--sup-budget", type=float, default=150.0, help="seconds of supervised training per size")
    p.add_argument("--finetune-lr", type=float, default=1e-3, help="fine-tune the Barlow Twins backbone (0: skip)")
    p.add_argument("--save-backbone", help="save the pretrained backbone here (for --load-backbone)")
    p.add_argument("--load-backbone", help="skip pretraining: use a backbone saved by --save-backbone")
    p.add_argument("--name", help="results file name")
    p.add_argument("--seed", type=int, default=SEED, help="training seed (the scenes stay the same)")
    return p


def finished(args: argparse.Namespace) -> argparse.Namespace:
    """The device's preset and pool size where the command line left them out."""
    args.preset = args.preset or ("gpu" if args.device.startswith("cuda") else "cpu")
    args.pool = args.pool or (10_000 if args.preset == "gpu" else 1500)
    return args


def _args() -> argparse.Namespace:
    return finished(parser().parse_args())


if __name__ == "__main__":
    sys.exit(main())
