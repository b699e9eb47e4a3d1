"""How a pretrained backbone's images become probe features, measured on saved backbones (no
pretraining here): the frozen probe's test mAP at 50 / 100 / 200 / 400 labels for each pooling of
layer2..layer4 (labeling/ml/embed.py's ``pool``: mean, maximum over positions, or both) and each
embedding resolution, for the Barlow Twins backbone and for the same architecture at its random
initialisation (the floor every comparison is made against, with the same features).

The embedding resolution: a backbone pretrained on random crops of 50-100 % of each image at R px
sees objects up to 1.4 times larger than they are in a whole image at R px, so it may read whole
images better a little larger than it was trained at (the "FixRes" effect).

Also (options): 3 x 3 crop views (--crops), a fine-tuned layer4 (--last-block-epochs) and augmented
copies of the labeled images as extra probe rows (--train-views).

    python -m bench.label_efficiency --family demo --save-backbone /tmp/demo.pt ...   # once
    python -m bench.feature_variants --load-backbone /tmp/demo.pt --family demo --resolutions 32 40 48

Results: bench/results/feature_variants_<name>.json.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np
import torch

from bench._util import write_result
from bench.label_efficiency import FAMILIES, render
from labeling.ml.augment import ViewConfig, apply_params, normalize, sample_params, to_float
from labeling.ml.backbone import stage_widths
from labeling.ml.embed import POOLS, embed_images, stage_maps
from labeling.ml.metrics import evaluate
from labeling.ml.presets import COLOUR_STRENGTHS
from labeling.ml.probe import ProbeConfig, fit_probe
from labeling.ml.train import PretrainConfig, build_model


def _backbones(path: str) -> tuple[dict, dict[str, torch.nn.Module]]:
    saved = torch.load(path, map_location="cpu", weights_only=False)
    config = PretrainConfig.from_dict(saved["config"])
    trained = build_model(config).backbone
    trained.load_state_dict(saved["backbone"])
    return saved, {"barlow_twins": trained, "random": build_model(config).backbone}


def _crop_views(args: argparse.Namespace, backbones: dict, sizes: list[int], r0: int) -> dict:
    """Features of 3 x 3 crops of r0 px out of each image rendered at --crops px, beside the whole
    image at r0: "crops_mean" (the mean of the ten views' features) and "crops_max" (the whole
    image's features, then the crops' maximum: a crop that holds the object says so)."""
    big = args.crops
    labeled = render(args.family, 0, sizes[-1], big)
    test = render(args.family, sizes[-1], args.test, big)
    whole = render(args.family, 0, sizes[-1], r0)[0], render(args.family, sizes[-1], args.test, r0)[0]
    offsets = np.linspace(0, big - r0, 3).round().astype(int)
    out: dict = {}
    for init, backbone in backbones.items():
        feats = []
        for images, small in zip((labeled[0], test[0]), whole):
            views = [
                embed_images(
                    backbone, np.ascontiguousarray(images[:, y : y + r0, x : x + r0]), multi_layer=True, flip_tta=True
                )
                for y in offsets
                for x in offsets
            ]
            full = embed_images(backbone, small, multi_layer=True, flip_tta=True).astype(np.float32)
            crops = np.stack(views).astype(np.float32)  # (9, N, D)
            feats.append(
                {"crops_mean": (crops.sum(0) + full) / 10, "crops_max": np.concatenate([full, crops.max(0)], 1)}
            )
        for kind in ("crops_mean", "crops_max"):
            row = _probe_maps(feats[0][kind], labeled[1], feats[1][kind], test[1], sizes)
            out.setdefault(init, {}).setdefault(kind, {})[str(big)] = row
            print(f"{big} px crops {init:12s} {kind:10s} {row}", flush=True)
    return out


def _stages(net: torch.nn.Module, images: np.ndarray, flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(layer2 pooled, layer3 maps) of the frozen network, in eval mode."""
    with torch.inference_mode():
        x = normalize(to_float(torch.from_numpy(np.ascontiguousarray(images))))
        l2, l3, _ = stage_maps(net, x.flip(3) if flip else x)
        return l2.mean((2, 3)).clone(), l3.clone()


def _probe_maps(f_lab: np.ndarray, y_lab: np.ndarray, f_test: np.ndarray, y_test: np.ndarray, sizes: list[int]) -> dict:
    """{labeled-set size: the test mAP of a probe fitted on that many labeled images}."""
    row = {}
    for n in sizes:
        probe = fit_probe(f_lab[:n], y_lab[:n])
        row[str(n)] = round(evaluate(y_test, probe.predict_proba(f_test), probe.thresholds).map, 4)
    return row


def _last_block(args: argparse.Namespace, backbones: dict, sizes: list[int], r0: int) -> dict:
    """layer4 fine-tuned on the labeled images (BCE, positive weights, mirror images as the
    augmentation, AdamW for --last-block-epochs), the stages below it frozen; the head reads the
    pooled layer2..layer4 (the app's multi-layer features), and the test images are scored as the
    mean over the image and its mirror image."""
    labeled = render(args.family, 0, sizes[-1], r0)
    test = render(args.family, sizes[-1], args.test, r0)
    out: dict = {}
    for init, backbone in backbones.items():
        net = backbone.eval()
        lab = [_stages(net, labeled[0], flip) for flip in (False, True)]
        tst = [_stages(net, test[0], flip) for flip in (False, True)]
        row, started = {}, time.perf_counter()
        for n in sizes:
            torch.manual_seed(0)
            block = copy.deepcopy(net.layer4).train()
            dims = lab[0][0].shape[1] + lab[0][1].shape[1] + stage_widths(net)[-1]
            head = torch.nn.Linear(dims, labeled[1].shape[1])
            params = [*block.parameters(), *head.parameters()]
            opt = torch.optim.AdamW(params, lr=args.last_block_lr, weight_decay=5e-4)
            y = torch.from_numpy(labeled[1][:n]).float()
            pos = y.sum(0)
            loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=(n - pos).clamp(min=1) / pos.clamp(min=1))

            def logits(l2: torch.Tensor, l3: torch.Tensor) -> torch.Tensor:
                return head(torch.cat([l2, l3.mean((2, 3)), block(l3).mean((2, 3))], 1))

            g = torch.Generator().manual_seed(0)
            for _ in range(args.last_block_epochs):
                order = torch.randperm(n, generator=g)
                for i in range(0, n, 64):
                    idx = order[i : i + 64]
                    flip = torch.rand(len(idx), generator=g) < 0.5
                    l2 = torch.where(flip[:, None], lab[1][0][idx], lab[0][0][idx])
                    l3 = torch.where(flip[:, None, None, None], lab[1][1][idx], lab[0][1][idx])
                    loss = loss_fn(logits(l2, l3), y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            block.eval()
            with torch.inference_mode():
                probs = sum(torch.sigmoid(logits(*t)) for t in tst) / 2
            row[str(n)] = round(evaluate(test[1], probs.numpy(), np.full(y.shape[1], 0.5)).map, 4)
        out.setdefault(init, {})["last_block_finetuned"] = {str(r0): row}
        print(f"{r0} px {init:12s} last block fine-tuned {row} ({time.perf_counter() - started:.0f} s)", flush=True)
    return out


# Augmented copies of the labeled images as extra probe rows: "geo" moves and mirrors the scene
# (crops of 70-100 %), "pretrain" is the CPU preset's own pretraining view (crops of 50-100 %,
# strong colour, blur half the time), the distortions Barlow Twins was trained to ignore.
TRAIN_VIEWS = {
    "geo": ViewConfig(scale=(0.7, 1.0), jitter_p=0.0, grayscale_p=0.0, blur_p=0.0),
    "pretrain": ViewConfig(scale=(0.5, 1.0), blur_p=0.5, **COLOUR_STRENGTHS["strong"]),
}


def _train_views(args: argparse.Namespace, backbones: dict, sizes: list[int], r0: int) -> dict:
    """The probe fitted on each labeled image and --train-views augmented copies of it (the copies
    carry the image's labels), at the weight decay that cross-validation picks on the images alone
    (copies of one image in different folds would leak); test images as the app embeds them."""
    labeled = render(args.family, 0, sizes[-1], r0)
    test = render(args.family, sizes[-1], args.test, r0)
    x = to_float(torch.from_numpy(np.ascontiguousarray(labeled[0])))
    out: dict = {}
    for kind, view in TRAIN_VIEWS.items():
        g = torch.Generator().manual_seed(0)
        copies = []
        for _ in range(args.train_views):
            params = sample_params(len(x), r0, r0, r0, view, g)
            copies.append((apply_params(x, params, r0).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy())
        for init, backbone in backbones.items():

            def embed(images: np.ndarray) -> np.ndarray:
                return embed_images(backbone, images, multi_layer=True, flip_tta=True).astype(np.float32)

            f_lab, f_test, f_copies = embed(labeled[0]), embed(test[0]), [embed(c) for c in copies]
            row = {}
            for n in sizes:
                decay = fit_probe(f_lab[:n], labeled[1][:n]).weight_decay
                rows = np.concatenate([f_lab[:n], *(c[:n] for c in f_copies)])
                ys = np.tile(labeled[1][:n], (1 + len(f_copies), 1))
                probe = fit_probe(rows, ys, ProbeConfig(weight_decays=(decay,)))
                row[str(n)] = round(evaluate(test[1], probe.predict_proba(f_test), probe.thresholds).map, 4)
            out.setdefault(init, {})[f"train_views_{kind}"] = {str(r0): row}
            print(f"{r0} px {init:12s} +{args.train_views} {kind} views {row}", flush=True)
    return out


def main() -> None:
    args = _args()
    saved, backbones = _backbones(args.load_backbone)
    sizes = sorted(args.sizes)
    most = sizes[-1]
    out: dict = {}
    r0 = saved["config"]["model"]["resolution"]
    if args.crops:
        out = _crop_views(args, backbones, sizes, r0)
    if args.last_block_epochs:
        for init, kinds in _last_block(args, backbones, sizes, r0).items():
            out.setdefault(init, {}).update(kinds)
    if args.train_views:
        for init, kinds in _train_views(args, backbones, sizes, r0).items():
            out.setdefault(init, {}).update(kinds)
    for r in args.resolutions:
        t = time.perf_counter()
        labeled = render(args.family, 0, most, r)
        test = render(args.family, most, args.test, r)
        print(f"{r} px: scenes rendered in {time.perf_counter() - t:.0f} s", flush=True)
        for init, backbone in backbones.items():
            for pool in args.pools:
                f_lab, f_test = (
                    embed_images(backbone, a, multi_layer=True, flip_tta=True, pool=pool).astype(np.float32)
                    for a in (labeled[0], test[0])
                )
                row = _probe_maps(f_lab, labeled[1], f_test, test[1], sizes)
                out.setdefault(init, {}).setdefault(pool, {})[str(r)] = row
                print(f"{r} px {init:12s} {pool:6s} {row}", flush=True)
    at = "200" if 200 in sizes else str(most)
    margins = {
        pool: {res: round(row[at] - out["random"][pool][res][at], 4) for res, row in by_res.items()}
        for pool, by_res in out["barlow_twins"].items()
    }
    print(f"Barlow Twins minus random at {at} labels:", margins, flush=True)
    write_result(
        f"feature_variants_{args.name}",
        {
            "family": args.family,
            "backbone": {k: saved[k] for k in ("steps", "seconds", "status")}
            | {"config": saved["config"], "file": args.load_backbone},
            "map": out,
            "bt_minus_random": {"at_labels": int(at), **margins},
            "sizes": {"test": args.test, "labeled": sizes, "source_px": FAMILIES[args.family][1]},
            "features": "layer2..layer4, averaged with the mirror image (the app's multi_tta), pooled by `pool`",
        },
    )


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--load-backbone", required=True, help="a backbone saved by label_efficiency --save-backbone")
    p.add_argument("--family", choices=sorted(FAMILIES), default="demo")
    p.add_argument("--resolutions", type=int, nargs="*", default=[32], help="embedding resolutions (px)")
    p.add_argument("--pools", nargs="+", choices=POOLS, default=list(POOLS))
    p.add_argument("--crops", type=int, help="also: 3 x 3 crops of the training resolution out of images this large")
    p.add_argument("--last-block-epochs", type=int, default=0, help="also: layer4 fine-tuned for this many epochs")
    p.add_argument("--train-views", type=int, default=0, help="also: this many augmented copies per labeled image")
    p.add_argument("--last-block-lr", type=float, default=1e-3)
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--name", required=True, help="results: bench/results/feature_variants_<name>.json")
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(main())
