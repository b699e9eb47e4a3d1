"""Does Barlow Twins pretraining help the probe? mAP of the linear probe on the demo scenes.

An unlabeled pool, 100 and 200 labeled images (``--labeled``; the smaller sets are the first
rows of the largest) and a held-out test set are drawn from the demo scene generator (known
labels). The same probe (labeling.ml.probe) is fitted on the labeled images' features from
three backbones with the same architecture:

- ``barlow_twins``: pretrained with labeling.ml.train on pool + labeled images (no labels);
- ``random``: the same network at its random initialisation (the floor);
- ``supervised``: trained from scratch on the same labeled images with BCE (its own head's
  test mAP is reported too), for a stated budget, once per labeled-set size.

The defaults depend on the device: a full-size run on a GPU, a ~10-minute run on a 2-core
CPU (see PRESETS). Every flag overrides its preset.

    python -m bench.probe_quality                      # GPU preset: 10k pool, 64 px, small stem, 60 epochs
    python -m bench.probe_quality --device cpu         # CPU preset (what bench/results/*_cpu_* hold)
    python -m bench.probe_quality --crop-min 0.5       # a higher crop floor for both views

The chance level is printed too: it is the mean label frequency of the test split (the
expected AP of scores that carry no information), about 0.33 on these scenes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from annotator.demo.scenes import LABELS, render_scene
from bench._util import machine_load, pretrain_timed, write_result
from labeling.ml.finetune import supervised_epoch
from labeling.ml.augment import normalize, to_float
from labeling.ml.backbone import ModelConfig, resnet18_backbone
from labeling.ml.cache import decode_square
from labeling.ml.embed import embed_images
from labeling.ml.metrics import evaluate
from labeling.ml.probe import fit_probe
from labeling.ml.train import PretrainConfig, Runtime, build_model

SEED = 0


def _render(start: int, n: int, resolution: int, source: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    labels = np.zeros((n, len(LABELS)), bool)
    for k in range(n):
        scene = render_scene(start + k, seed=SEED, size=(source, source))
        images[k] = decode_square(scene.image, resolution)  # as the cache stores them
        labels[k] = [name in scene.labels for name in LABELS]
    return images, labels


def scenes(start: int, n: int, resolution: int, source: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, R, R, 3) uint8 images and (n, L) bool labels of scenes start .. start+n-1.

    Rendered on every core (scene i is the same whoever renders it). Forked workers: call this
    before the parent starts CUDA work.
    """
    workers = os.cpu_count() or 1
    if n < 512 or workers == 1:
        return _render(start, n, resolution, source)
    chunk = -(-n // (4 * workers))
    starts = range(start, start + n, chunk)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(
            pool.map(
                _render,
                starts,
                [min(chunk, start + n - s) for s in starts],
                [resolution] * len(starts),
                [source] * len(starts),
            )
        )
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def probe_map(backbone: torch.nn.Module, train: tuple, test: tuple, device: str) -> dict:
    f_train = embed_images(backbone, train[0], device=device)
    f_test = embed_images(backbone, test[0], device=device)
    t = time.perf_counter()
    probe = fit_probe(f_train, train[1])
    fit_s = time.perf_counter() - t
    m = evaluate(test[1], probe.predict_proba(f_test), probe.thresholds)
    return {**m.to_dict(), "probe_fit_s": round(fit_s, 2), "weight_decay": probe.weight_decay}


def train_supervised(config: ModelConfig, train: tuple, epochs: int, batch: int, lr: float, device: str) -> tuple:
    """ResNet-18 + linear head on the labeled images only, BCE, augmented like view 1."""
    torch.manual_seed(SEED)
    backbone = resnet18_backbone(small_stem=config.uses_small_stem).to(device)
    head = torch.nn.Linear(512, len(LABELS)).to(device)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=5e-4)
    images = torch.from_numpy(train[0]).to(device)
    labels = torch.from_numpy(train[1]).float().to(device)
    pos = labels.sum(0)
    pos_weight = (len(labels) - pos).clamp(min=1) / pos.clamp(min=1)
    steps = epochs * max(1, len(images) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator(device=device).manual_seed(SEED)
    backbone.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(int(g.initial_seed()) + _))
        supervised_epoch(
            backbone,
            head,
            opt,
            sched,
            images,
            labels,
            order=order,
            batch=batch,
            steps=len(images) // batch,
            pos_weight=pos_weight,
            generator=g,
        )
    return backbone.eval(), head.eval()


# Defaults per device; any flag given on the command line wins.
# fmt: off
PRESETS = {
    # "gpu": about a minute of pretraining on one H100/H200 (a lent machine's time is short).
    # "cpu": about 10 minutes of BT pretraining on 2 CPU cores.
    "gpu": dict(pool=10000, test=2000, resolution=64, stem="auto", epochs=60, warmup_epochs=6,
                batch=256, lr_weights=0.2, projector="2048-2048-2048", sup_epochs=200),
    "cpu": dict(pool=1500, test=500, resolution=32, stem="standard", epochs=24, warmup_epochs=2,
                batch=128, lr_weights=0.2, projector="512-512-512", sup_epochs=60),
}
# fmt: on
STEMS = {"auto": None, "small": True, "standard": False}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--pool", type=int, help="unlabeled images")
    p.add_argument("--labeled", type=int, nargs="+", default=[100, 200], help="labeled-set sizes")
    p.add_argument("--test", type=int)
    p.add_argument("--resolution", type=int)
    p.add_argument("--source", type=int, default=256, help="size the scenes are rendered at")
    p.add_argument("--stem", choices=sorted(STEMS), help="auto: small stem at <= 64 px; standard: the ImageNet stem")
    p.add_argument("--epochs", type=int)
    p.add_argument("--warmup-epochs", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr-weights", type=float)
    p.add_argument("--projector")
    p.add_argument("--sup-epochs", type=int)
    p.add_argument("--sup-lr", type=float, default=2e-3)
    p.add_argument("--crop-min", type=float, default=0.2, help="lowest crop area of the two views (paper: 0.2)")
    p.add_argument("--compile", action="store_true", help="torch.compile the pretraining step and augmentations")
    p.add_argument("--name", help="results file name (default: from the device and settings)")
    args = p.parse_args()
    preset = PRESETS["gpu" if args.device.startswith("cuda") else "cpu"]
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def epoch_means(history: list[float], epochs: int) -> list[float]:
    per = len(history) // max(epochs, 1)
    return [round(float(np.mean(history[i * per : (i + 1) * per])), 2) for i in range(epochs)] if per else []


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    args = parse_args()
    model = ModelConfig(
        resolution=args.resolution,
        small_stem=STEMS[args.stem],
        projector=tuple(int(d) for d in args.projector.split("-")),
    )
    config = PretrainConfig(
        model=model,
        epochs=args.epochs,
        batch_size=args.batch,
        warmup_epochs=args.warmup_epochs,
        lr_weights=args.lr_weights,
        seed=SEED,
        crop_scale=(args.crop_min, 1.0),
    )
    sizes = sorted(args.labeled)
    most = sizes[-1]
    t = time.perf_counter()
    labeled = scenes(0, most, args.resolution, args.source)
    test = scenes(most, args.test, args.resolution, args.source)
    pool = scenes(most + args.test, args.pool, args.resolution, args.source)
    print(f"{most + args.test + args.pool} scenes rendered and cached in {time.perf_counter() - t:.0f} s")

    def first(n: int) -> tuple[np.ndarray, np.ndarray]:
        return labeled[0][:n], labeled[1][:n]

    chance = float(test[1].mean(axis=0).mean())
    print(f"chance level (mean label frequency of the test split): {chance:.3f}")
    results: dict[int, dict] = {n: {} for n in sizes}
    # The floor: the same network at its random initialisation, in eval mode (as embed runs it).
    random_backbone = build_model(config).backbone
    for n in sizes:
        results[n]["random"] = probe_map(random_backbone, first(n), test, args.device)
        print(f"{n} labeled, random weights: {results[n]['random']['map']:.3f}")

    def report(pr) -> None:
        print(f"  bt epoch {pr.epoch} step {pr.step} loss {pr.loss:.1f} {pr.images_per_s:.0f} img/s")

    runtime = Runtime(device=args.device, compile=args.compile, log_every=100, on_progress=report)
    run, bt_s = pretrain_timed(config, pool[0], labeled[0], runtime)
    for n in sizes:
        results[n]["barlow_twins"] = probe_map(run.model.backbone, first(n), test, args.device)
        print(f"{n} labeled, barlow twins: {results[n]['barlow_twins']['map']:.3f} ({bt_s:.0f} s pretraining)")

    sup_batch = {n: min(64, n) for n in sizes}
    sup_s = {}
    for n in sizes:
        t = time.perf_counter()
        backbone, head = train_supervised(model, first(n), args.sup_epochs, sup_batch[n], args.sup_lr, args.device)
        sup_s[n] = time.perf_counter() - t
        results[n]["supervised"] = probe_map(backbone, first(n), test, args.device)
        with torch.inference_mode():
            x = torch.from_numpy(test[0]).to(args.device)
            logits = torch.cat([head(backbone(normalize(to_float(x[i : i + 256])))) for i in range(0, len(x), 256)])
        head_map = evaluate(test[1], torch.sigmoid(logits).float().cpu().numpy(), np.full(len(LABELS), 0.5)).map
        results[n]["supervised"]["own_head_map"] = head_map
        print(
            f"{n} labeled, supervised from scratch: probe {results[n]['supervised']['map']:.3f} "
            f"own head {head_map:.3f} ({sup_s[n]:.0f} s)"
        )

    unlabeled = len(pool[0]) + len(labeled[0])  # the images pretraining saw
    bt_steps = args.epochs * (unlabeled // min(args.batch, unlabeled))
    table, targets = {}, {}
    for n in sizes:
        r = results[n]
        best_sup = max(r["supervised"]["map"], r["supervised"]["own_head_map"])
        table[str(n)] = {
            "barlow_twins": r["barlow_twins"]["map"],
            "random": r["random"]["map"],
            "supervised_probe": r["supervised"]["map"],
            "supervised_head": r["supervised"]["own_head_map"],
            "bt_minus_random": r["barlow_twins"]["map"] - r["random"]["map"],
            "bt_minus_supervised": r["barlow_twins"]["map"] - best_sup,
        }
        targets[str(n)] = {
            "bt_beats_random_by_0.10": table[str(n)]["bt_minus_random"] >= 0.10,
            "bt_beats_supervised": table[str(n)]["bt_minus_supervised"] > 0,
        }
    figures = {
        "labels": list(LABELS),
        "sizes": {
            "pool": args.pool,
            "labeled": sizes,
            "test": args.test,
            "resolution": args.resolution,
            "source": args.source,
        },
        "pretrain_config": config.to_dict(),
        "budget": {
            "barlow_twins": {
                "seconds": round(bt_s, 1),
                "steps": bt_steps,
                "compiled": args.compile,
                "image_views": bt_steps * min(args.batch, unlabeled) * 2,
            },
            "supervised": {
                str(n): {
                    "seconds": round(sup_s[n], 1),
                    "epochs": args.sup_epochs,
                    "steps": args.sup_epochs * max(1, n // sup_batch[n]),
                    "images": args.sup_epochs * max(1, n // sup_batch[n]) * sup_batch[n],
                }
                for n in sizes
            },
        },
        "chance_map": chance,
        "map": table,
        "targets_met": targets,
        "details": {str(n): r for n, r in results.items()},
        "bt_loss_first_last": [run.loss_history[0], run.loss_history[-1]],
        "bt_loss_per_epoch": epoch_means(run.loss_history, args.epochs),
        "load_average": machine_load(load_start),
    }
    for n in sizes:
        print(f"{n} labeled: {table[str(n)]} targets {targets[str(n)]}")
    kind = "gpu" if args.device.startswith("cuda") else "cpu"
    write_result(
        args.name
        or f"probe_quality_{kind}_r{args.resolution}_{args.stem}_e{args.epochs}_p{args.pool}_crop{args.crop_min:g}",
        figures,
    )


if __name__ == "__main__":
    main()
