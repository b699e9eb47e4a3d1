"""Box suggestions that save drawing: the detector of labeling/ml/detector.py (FCOS over a feature
pyramid on our ResNet-18, backbone frozen as the app's first fits train it) on the demo scenes
(annotator/demo/scenes.py, exact boxes), with 50 / 100 / 200 images with boxes, initialised

- ``barlow_twins``: from a backbone pretrained with the app's pretraining (labeling.ml.train) on a
  pool of scenes and the labeled ones (never the test scenes), for a time budget;
- ``random``: the same network at its random initialisation;

scored on held-out scenes by pycocotools (COCO's own evaluator): AP50 and mAP@[.5:.95], and the
prediction rate (what "suggestions for 1,000 images" costs).

    python -m bench.box_quality                          # CPU preset, ~10 minutes on 2 cores
    python -m bench.box_quality --device cuda --preset gpu
    python -m bench.box_quality --family clutter_large_solid  # the second family (label_efficiency.FAMILIES)

``--family clutter``: issue 13's second scene family, made differently on purpose (composite
objects of any colour and size, noise / gradient / texture backgrounds, distractors and occluders,
boxes from the visible pixels), rendered at its 128 px; the same detector and settings, to show it
is not tuned to the demo's generator.

Results: bench/results/box_quality_<preset>[_clutter].json. On a shared CPU the time budgets buy fewer steps
than on an idle one (the load is recorded with the figures).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from PIL import Image as PILImage

from bench._util import machine_load, pretrain_timed, write_result
from bench.label_efficiency import FAMILIES, _family, render_scene
from labeling.ml.backbone import ModelConfig
from labeling.ml.cache import decode_square
from labeling.ml.detector import DetectorConfig, predict, train_detector, training_set
from labeling.ml.presets import DETECTOR_PRESETS, PRESETS
from labeling.ml.train import PretrainConfig, Runtime

SEED = 0
SOURCE_PX = 256  # the demo project's scene size (the family's own, set by main)
# Detector settings per preset: the app's own; the BT pretraining is the app's preset with the budget below.
DETECTOR = DETECTOR_PRESETS


FAMILY = "demo"


def family():
    """The scene module of ``FAMILY`` (bench.label_efficiency's FAMILIES)."""
    return _family(FAMILY)


def scenes(start: int, n: int):
    LABELS = family().LABELS
    images, boxes, labels = [], [], []
    for k in range(n):
        scene = render_scene(FAMILY, start + k, SOURCE_PX)
        images.append(np.asarray(scene.image.convert("RGB"), dtype=np.uint8))
        boxes.append(np.array([o.box for o in scene.objects], np.float32).reshape(-1, 4))
        labels.append(np.array([LABELS.index(o.label) for o in scene.objects], np.int64))
    return images, boxes, labels


def own_ap50(found, boxes, labels, classes: int) -> float:
    """The mean over labels of the AP50 the app's detector runs report (labeling.ml.detector's
    matching, no interpolation): a cross-check of the run metrics against COCOeval's AP50."""
    from labeling.ml.detector import average_precision, match_detections

    scores, correct, truths = [[] for _ in range(classes)], [[] for _ in range(classes)], [0] * classes
    for f, b, lab in zip(found, boxes, labels):
        hit = match_detections(f, b, lab)
        for c in range(classes):
            scores[c].append(f.scores[f.labels == c])
            correct[c].append(hit[f.labels == c])
            truths[c] += int((lab == c).sum())
    aps = [average_precision(np.concatenate(s), np.concatenate(k), t) for s, k, t in zip(scores, correct, truths)]
    defined = [a for a in aps if a is not None]
    return round(float(np.mean(defined)), 4) if defined else 0.0


def coco_scores(found, boxes, labels, classes: int) -> dict:
    """AP50 and mAP@[.5:.95] by pycocotools' COCOeval (labeling.ml.coco_eval, what a detector run
    stores for the dashboard), over the test scenes; None where pycocotools is not installed."""
    from labeling.ml.coco_eval import coco_scores as evaluate

    scores = evaluate(
        [(SOURCE_PX, SOURCE_PX)] * len(boxes),
        boxes,
        labels,
        [f.boxes for f in found],
        [f.scores for f in found],
        [f.labels for f in found],
        classes,
    )
    if scores is None:
        return {"ap50": None, "map": None}
    return {"map": round(scores.map or 0.0, 4), "ap50": round(scores.ap50 or 0.0, 4)}


def pretrained_backbone(args, labeled_images) -> tuple[torch.nn.Module, dict]:
    preset = PRESETS[args.preset]
    model = ModelConfig(
        resolution=args.bt_resolution or preset["resolution"],
        small_stem=False,  # the detector works at several times the pretraining's resolution
        projector=tuple(preset["projector"]),
    )
    config = PretrainConfig(
        model=model,
        epochs=preset["epochs"],
        batch_size=preset["batch_size"],
        warmup_epochs=preset["warmup_epochs"],
        lr_weights=preset["lr_weights"],
        seed=SEED,
        crop_scale=(preset["crop_min"], 1.0),
        colour=preset["colour"],
        time_budget_s=args.budget,
    )
    r = model.resolution
    start = (args.labeled or args.sizes[-1]) + args.test  # after the labeled and the held-out scenes
    pool = np.stack([decode_square(render_scene(FAMILY, start + k, SOURCE_PX).image, r) for k in range(args.pool)])
    labeled = np.stack([decode_square(PILImage.fromarray(a), r) for a in labeled_images])
    run, seconds = pretrain_timed(config, pool, labeled, Runtime(device=args.device, log_every=10**9))
    info = {
        "resolution": r,
        "pool": args.pool,
        "steps": len(run.loss_history),
        "seconds": round(seconds, 1),
        "budget_s": args.budget,
        "final_loss": round(run.loss_history[-1], 2) if run.loss_history else None,
    }
    print(f"pretraining: {info}", flush=True)
    return run.model.backbone, info


def main() -> None:
    global FAMILY, SOURCE_PX
    args = _args()
    FAMILY, SOURCE_PX = args.family, FAMILIES[args.family][1]
    load_start = os.getloadavg()
    # One thread on a CPU: on 2 shared cores two threads ran a detector step 9x slower (0.24 s -> 2.1 s).
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    most = args.labeled or args.sizes[-1]  # the split: scenes 0..most-1 labeled, the next --test held out
    if args.sizes[-1] > most:
        raise SystemExit(f"--sizes go up to {args.sizes[-1]}, more than the {most} labeled scenes")
    t = time.perf_counter()
    labeled = scenes(0, most)
    test = scenes(most, args.test)
    print(f"rendered {most + args.test} scenes in {time.perf_counter() - t:.0f} s", flush=True)
    LABELS = family().LABELS
    if "barlow_twins" in args.inits and args.load_backbone:  # a pretraining saved by --save-backbone
        saved = torch.load(args.load_backbone, map_location="cpu", weights_only=False)
        if saved["split"] != [args.family, most, args.test]:  # its pool must not hold this run's test scenes
            raise SystemExit(f"{args.load_backbone} was pretrained for (family, labeled, test) {saved['split']}")
        backbone_state, bt = saved["backbone"], {**saved["info"], "loaded_from": args.load_backbone}
        print(f"pretraining: loaded {args.load_backbone} {saved['info']}", flush=True)
    elif "barlow_twins" in args.inits:
        backbone, bt = pretrained_backbone(args, labeled[0])
        backbone_state = {k: v.clone() for k, v in backbone.state_dict().items()}
        if args.save_backbone:
            torch.save(
                {"backbone": backbone_state, "info": bt, "split": [args.family, most, args.test]}, args.save_backbone
            )
    else:
        bt = None
    small = (
        DETECTOR[args.preset]
        | ({"steps": args.steps} if args.steps else {})
        | ({"time_budget_s": args.detector_budget} if args.detector_budget else {})
        | ({"trainable_layers": args.trainable_layers} if args.trainable_layers is not None else {})
        | ({"size": args.size} if args.size else {})
    )
    figures: dict = {
        "family": args.family,
        "source_px": SOURCE_PX,
        "pretraining": bt,
        "detector": small,
        "sizes": args.sizes,
        "labeled_scenes": most,
        "test_scenes": args.test,
        "runs": {},
    }
    for n in args.sizes:
        data = training_set(labeled[0][:n], labeled[1][:n], labeled[2][:n], small["size"])
        for init in args.inits:
            start = None
            if init == "barlow_twins":
                from labeling.ml.backbone import resnet18_backbone

                start = resnet18_backbone(small_stem=False)
                start.load_state_dict(backbone_state)
            config = DetectorConfig(num_classes=len(LABELS), seed=SEED, **small)
            t0 = time.perf_counter()
            result = train_detector(config, data, backbone=start, runtime=_runtime(args))
            train_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            found = predict(result.model, test[0], config, device=args.device, batch_size=32)
            predict_s = time.perf_counter() - t0
            scores = coco_scores(found, test[1], test[2], len(LABELS))
            scores["ap50_own"] = own_ap50(found, test[1], test[2], len(LABELS))
            row = {
                **scores,
                "train_s": round(train_s, 1),
                "steps": result.steps_done,
                "images_per_s_predict": round(len(test[0]) / predict_s, 1),
                "loss_first": round(float(np.mean(result.losses[:10])), 3),
                "loss_last": round(float(np.mean(result.losses[-10:])), 3),
            }
            figures["runs"].setdefault(init, {})[str(n)] = row
            print(f"{init:>12} n={n:>4}: {row}", flush=True)
    largest = str(args.sizes[-1])
    key = "ap50" if figures["runs"][args.inits[0]][largest]["ap50"] is not None else "ap50_own"
    if len(args.inits) == 2:
        figures["bt_minus_random_ap50"] = {
            n: round(figures["runs"]["barlow_twins"][n][key] - figures["runs"]["random"][n][key], 4)
            for n in figures["runs"]["random"]
        }
    rate = figures["runs"][args.inits[0]][largest]["images_per_s_predict"]
    figures["suggest_1000_images_s_estimate"] = round(1000 / rate, 1)
    figures["load"] = machine_load(load_start)
    figures["threads"] = args.threads
    family_part = "" if args.family == "demo" else f"_{args.family}"
    write_result(f"box_quality_{args.preset}{family_part}{'_' + args.tag if args.tag else ''}", figures)


def _runtime(args):
    from labeling.ml.detector import DetectorRuntime

    return DetectorRuntime(device=args.device)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=("cpu", "gpu"), default="cpu")
    p.add_argument(
        "--family", choices=sorted(FAMILIES), default="demo", help="the scene generator (label_efficiency.FAMILIES)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--test", type=int, default=100, help="held-out scenes scored")
    p.add_argument("--pool", type=int, default=1000, help="unlabeled scenes the pretraining also sees")
    p.add_argument("--budget", type=float, default=150, help="pretraining seconds")
    p.add_argument("--bt-resolution", type=int, default=None, help="pretraining px (default: the preset's)")
    p.add_argument("--steps", type=int, default=None, help="detector steps (default: the preset's)")
    p.add_argument(
        "--detector-budget",
        type=float,
        default=None,
        help="detector training seconds (--steps then only caps it; default: the preset's)",
    )
    p.add_argument(
        "--trainable-layers",
        type=int,
        default=None,
        help="backbone stages the detector trains, from the top (default: the preset's; the app trains 2 from"
        " DETECTOR_FINETUNE_FROM images with boxes)",
    )
    p.add_argument(
        "--inits",
        nargs="+",
        choices=("barlow_twins", "random"),
        default=["barlow_twins", "random"],
        help="the detector backbones compared (random alone skips the pretraining)",
    )
    p.add_argument(
        "--labeled", type=int, default=None, help="scenes before the held-out ones (default: the largest of --sizes)"
    )
    p.add_argument("--size", type=int, default=None, help="detector input px (default: the preset's)")
    p.add_argument("--save-backbone", help="save the Barlow Twins pretraining here (for --load-backbone)")
    p.add_argument(
        "--load-backbone",
        help="skip the pretraining: use one saved by --save-backbone (refused unless --family, --labeled and --test match)",
    )
    p.add_argument("--tag", default="", help="appended to the result's name (box_quality_<preset>_<tag>.json)")
    p.add_argument("--threads", type=int, default=1 if not torch.cuda.is_available() else os.cpu_count() or 1)
    args = p.parse_args()
    args.sizes = sorted(args.sizes)
    return args


if __name__ == "__main__":
    main()
