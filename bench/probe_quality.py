"""Does Barlow Twins pretraining help the probe? mAP of the linear probe on the demo scenes.

An unlabeled pool, 200 labeled images and a held-out test set are drawn from the demo scene
generator (known labels). The same probe (labeling.ml.probe) is fitted on the 200 labeled
images' features from three backbones with the same architecture:

- ``barlow_twins``: pretrained with labeling.ml.train on pool + labeled images (no labels);
- ``random``: the same network at its random initialisation (the floor);
- ``supervised``: trained from scratch on the 200 labeled images with BCE (its own head's
  test mAP is reported too), for a stated budget.

    python -m bench.probe_quality                                   # full size (GPU)
    python -m bench.probe_quality --pool 3000 --epochs 12 --no-small-stem   # a CPU-sized run
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from annotator.demo.scenes import LABELS, render_scene
from bench._util import write_result
from labeling.ml.augment import VIEW1, augment, to_float
from labeling.ml.backbone import ModelConfig, resnet18_backbone
from labeling.ml.cache import decode_square
from labeling.ml.embed import embed_images
from labeling.ml.metrics import evaluate
from labeling.ml.probe import fit_probe
from labeling.ml.train import PretrainConfig, Runtime, build_model, pretrain

SEED = 0


def scenes(start: int, n: int, resolution: int, source: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, R, R, 3) uint8 images and (n, L) bool labels of scenes start .. start+n-1."""
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    labels = np.zeros((n, len(LABELS)), bool)
    for k in range(n):
        scene = render_scene(start + k, seed=SEED, size=(source, source))
        images[k] = decode_square(scene.image, resolution)  # as the cache stores them
        labels[k] = [name in scene.labels for name in LABELS]
    return images, labels


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
        for i in range(len(images) // batch):
            idx = order[i * batch:(i + 1) * batch].to(device)
            x = augment(to_float(images[idx]), VIEW1, g)
            loss = F.binary_cross_entropy_with_logits(head(backbone(x)), labels[idx], pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return backbone.eval(), head.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", type=int, default=20000, help="unlabeled images")
    p.add_argument("--labeled", type=int, default=200)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--source", type=int, default=256, help="size the scenes are rendered at")
    p.add_argument("--no-small-stem", action="store_true", help="ImageNet stem (4x cheaper at 64 px; for CPU runs)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--warmup-epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr-weights", type=float, default=0.2)
    p.add_argument("--projector", default="2048-2048-2048")
    p.add_argument("--sup-epochs", type=int, default=200)
    p.add_argument("--sup-lr", type=float, default=2e-3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()

    model = ModelConfig(resolution=args.resolution, small_stem=False if args.no_small_stem else None,
                        projector=tuple(int(d) for d in args.projector.split("-")))
    config = PretrainConfig(model=model, epochs=args.epochs, batch_size=args.batch, warmup_epochs=args.warmup_epochs,
                            lr_weights=args.lr_weights, seed=SEED)
    t = time.perf_counter()
    labeled = scenes(0, args.labeled, args.resolution, args.source)
    test = scenes(args.labeled, args.test, args.resolution, args.source)
    pool = scenes(args.labeled + args.test, args.pool, args.resolution, args.source)
    print(f"scenes rendered and cached in {time.perf_counter() - t:.0f} s")

    random_backbone = build_model(config).backbone
    results = {"random": probe_map(random_backbone, labeled, test, args.device)}
    print("random weights:", round(results["random"]["map"], 3))

    t = time.perf_counter()
    unlabeled = np.concatenate([pool[0], labeled[0]])  # pretraining never sees the test set
    run = pretrain(config, unlabeled, Runtime(device=args.device, log_every=50, on_progress=lambda pr: print(
        f"  bt epoch {pr.epoch} step {pr.step} loss {pr.loss:.1f} {pr.images_per_s:.0f} img/s")))
    bt_s = time.perf_counter() - t
    results["barlow_twins"] = probe_map(run.model.backbone, labeled, test, args.device)
    print("barlow twins:", round(results["barlow_twins"]["map"], 3), f"({bt_s:.0f} s)")

    t = time.perf_counter()
    backbone, head = train_supervised(model, labeled, args.sup_epochs, min(64, args.labeled), args.sup_lr, args.device)
    sup_s = time.perf_counter() - t
    results["supervised"] = probe_map(backbone, labeled, test, args.device)
    with torch.inference_mode():
        x = torch.from_numpy(test[0]).to(args.device)
        from labeling.ml.augment import normalize
        logits = torch.cat([head(backbone(normalize(to_float(x[i:i + 256])))) for i in range(0, len(x), 256)])
    head_map = evaluate(test[1], torch.sigmoid(logits).cpu().numpy(), np.full(len(LABELS), 0.5)).map
    results["supervised"]["own_head_map"] = head_map
    print("supervised from scratch: probe", round(results["supervised"]["map"], 3), "own head", round(head_map, 3),
          f"({sup_s:.0f} s)")

    steps = args.epochs * (len(unlabeled) // min(args.batch, len(unlabeled)))
    sup_steps = args.sup_epochs * max(1, args.labeled // min(64, args.labeled))
    best_sup = max(results["supervised"]["map"], head_map)
    figures = {
        "labels": list(LABELS),
        "sizes": {"pool": args.pool, "labeled": args.labeled, "test": args.test, "resolution": args.resolution,
                  "source": args.source},
        "pretrain_config": asdict(config),
        "budget": {
            "barlow_twins": {"seconds": round(bt_s, 1), "steps": steps,
                             "image_views": steps * min(args.batch, len(unlabeled)) * 2},
            "supervised": {"seconds": round(sup_s, 1), "epochs": args.sup_epochs, "steps": sup_steps,
                           "images": sup_steps * min(64, args.labeled)},
        },
        "map": {"barlow_twins": results["barlow_twins"]["map"], "random": results["random"]["map"],
                "supervised_probe": results["supervised"]["map"], "supervised_head": head_map},
        "bt_minus_random": results["barlow_twins"]["map"] - results["random"]["map"],
        "bt_minus_supervised": results["barlow_twins"]["map"] - best_sup,
        "targets_met": {"bt_beats_random_by_0.10": results["barlow_twins"]["map"] - results["random"]["map"] >= 0.10,
                        "bt_beats_supervised": results["barlow_twins"]["map"] > best_sup},
        "details": results,
        "bt_loss_first_last": [run.loss_history[0], run.loss_history[-1]],
    }
    print({k: figures[k] for k in ("map", "bt_minus_random", "bt_minus_supervised", "targets_met")})
    write_result("probe_quality" + ("" if args.device.startswith("cuda") else "_cpu"), figures)


if __name__ == "__main__":
    main()
