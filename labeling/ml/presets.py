"""Pretraining presets per device, and how long a run will take, estimated before it starts.

Pure Python (no torch, no Django): the web process imports it to say "this would take 6 h on the
worker's CPU" before a click starts anything.

The CPU preset is sized for a 2-core machine: a 32 px input through the standard (ImageNet) stem
costs ~64 "stem pixels" per image against 4,096 for 64 px through the small stem, so a step of 64
images takes well under a second on one core and a 10-minute time budget sees tens of thousands of images
(throughput is quality on a CPU). The GPU preset is the full-size recipe of bench/probe_quality.py.
"""

from __future__ import annotations

import math
from typing import Any

# How hard both views' colours are distorted (a pretraining config's "colour"). "reference" is Barlow
# Twins' own jitter. "strong" is SimCLR's finding (Chen et al. 2020, section 3 and table 1): where
# colour tells images apart better than their content, a network solves the objective with colour
# histograms unless the views' colours disagree; so the whole hue wheel, doubled brightness,
# contrast and saturation ranges, and grayscale on half the views. On the demo scenes (shapes of
# random colours), 10-minute CPU pretrainings on the same 2 cores, the same day (732 / 777 steps):
# probe mAP at 200 / 400 labels 0.351 / 0.375 with "reference", 0.388 / 0.400 with "strong"; random
# weights 0.328 / 0.342, supervised from scratch 0.377 / 0.447
# (bench/results/label_efficiency_cpu_demo_reference_colour.json, label_efficiency_cpu_demo_colour.json).
# Each is laid over both views' labeling.ml.augment.ViewConfig (hue: a shift of up to that share of the wheel).
COLOUR_STRENGTHS: dict[str, dict[str, float]] = {
    "reference": {},
    "strong": {"brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.5, "grayscale_p": 0.5},
}

PRESETS: dict[str, dict[str, Any]] = {
    # time_budget_s: the run is sized by wall-clock time; epochs only caps it.
    "cpu": {
        "resolution": 32,
        "small_stem": False,
        "epochs": 500,
        "time_budget_s": 600,
        # 256 (105 against 82 img/s on the worker's one thread) was the preset for a few hours of
        # 2026-12-06 and went back to 64: at 200 labels, a 10-minute run on one core each side by side
        # (bench/results/label_efficiency_cpu_{demo,clutter}_b{64,256}_1thread_pair[_seed1].json),
        # 256 won one demo seed (0.410 against 0.388, Xeon) and lost the other (0.414 against 0.433,
        # AMD) and lost both clutter seeds (0.263 / 0.270 against 0.281 / 0.286, all near chance).
        # On two threads at equal time it won two demo seeds (recipe_variants_*.json): not the
        # worker's default on 2 cores, and no clutter figure.
        "batch_size": 64,
        # ResNet-18 at its own width. A quarter of it through the small stem (ModelConfig.width 16:
        # 32 x 32 maps in the first block at the same cost) scored 0.385 / 0.396 frozen at 200 labels
        # against 0.407 for this preset, and 0.463 / 0.441 fine-tuned on the labels against 0.421 (two
        # seeds, demo scenes; clutter at chance; bench/results/label_efficiency_cpu_*_w16small_*.json).
        # The app's probe is frozen, so not adopted: see the README's table.
        "projector": [512, 512, 512],
        "warmup_epochs": 2,
        "crop_min": 0.5,
        "colour": "strong",  # measured: see COLOUR_STRENGTHS above
        "lr_weights": 0.2,
        "seed": 0,
        # Probe features: layer2..layer4 pooled, averaged with the mirror image. On the demo scenes
        # at 200 labels after a 10-minute CPU pretraining (bench/results/label_efficiency_cpu_demo_idle.json)
        # they scored 0.398 mAP against 0.359 for the last layer alone; embedding costs two passes.
        # Each stage's maximum instead of its mean, larger inputs, 3 x 3 crop views and a fine-tuned
        # layer4 were measured too (bench/feature_variants.py, 2026-12-06) and not adopted: they
        # lift the same features of random weights as much, so the margin stays +0.05 to +0.09.
        "features": "multi_tta",
    },
    "gpu": {
        "resolution": 64,
        "small_stem": None,
        "epochs": 100,
        "time_budget_s": None,
        "batch_size": 256,
        "projector": [2048, 2048, 2048],
        "warmup_epochs": 2,
        "crop_min": 0.5,
        "colour": "reference",  # "strong" is measured on the CPU preset only (bench/gpu-lease.sh measures it here)
        "lr_weights": 0.2,
        "seed": 0,
    },
}

# A detector fit's settings per worker device (labeling.ml.detector.DetectorConfig's fields); the
# run stores what it was queued with. bench/box_quality.py measured these (bench/results/box_quality_*.json).
# CPU, held-out AP50 at 200 demo images with boxes (Barlow Twins backbone / random weights): 0.33 /
# 0.41 in 120 s at 128 px (box_quality_cpu_n200_preset_budget120.json, the earlier preset);
# 0.49 / 0.44 in 600 s at 128 px with the top two stages trained (..._finetune2_budget600.json); past
# ~2,000 steps input size buys more than steps: 600 s at 192 px, top two stages trained, gave 0.544 /
# 0.334 on two threads (..._finetune2_budget600_threads2_size192*.json) and 0.526 on one (the app's
# TRAIN_THREADS on 2 cores: ..._threads1_size192.json); at 100 images 0.401 / 0.190. That is this
# preset. A 10-minute fit no longer holds the probe's refits up: a detector run pauses every
# TRAINING_SLICE_S seconds while other runs wait, and resumes from its checkpoint after them
# (labeling.detection). The time budget is the cap; DETECTOR_RULES scale it down for fewer images.
DETECTOR_PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "size": 192,
        "fpn_channels": 64,
        "steps": 20000,  # only caps it: the time budget sizes a CPU fit
        "time_budget_s": 600,
        "batch_size": 8,
        "lr": 2e-3,
        "warmup_steps": 20,
    },
    "gpu": {"size": 384, "fpn_channels": 128, "steps": 1500, "batch_size": 32, "lr": 1e-3, "warmup_steps": 100},
}

# How a fit adapts to the number of submitted images with boxes (``detector_fit``), per device:
# - finetune_from: from this many images the backbone's top two stages train too (fewer: only the
#   pyramid and head learn). CPU: measured from 100 (above); GPU: not measured below 300.
# - seconds_per_image, min_seconds: a time-budgeted fit trains for seconds_per_image per image
#   (so about the same number of epochs whatever the number: 600 s at 200 images is the measured
#   recipe), at least min_seconds and at most the preset's budget. None: the preset's budget as is.
DETECTOR_RULES: dict[str, dict[str, Any]] = {
    "cpu": {"finetune_from": 100, "seconds_per_image": 3.0, "min_seconds": 60.0},
    "gpu": {"finetune_from": 300, "seconds_per_image": None, "min_seconds": None},
}


# Fine-tuned suggestions (labeling/ml/finetune.py), per device: from this many submitted images a
# probe fit also fine-tunes the backbone end to end with a multilabel head, cross-fitted for its
# out-of-fold scores, and keeps whichever scorer, frozen probe or fine-tuned network, has the better
# out-of-fold mAP on the same folds (None: never).
# - CPU, from 200: on both scene families after a 10-minute pretraining, one thread, two seeds
#   (bench/results/finetune_scorer_cpu_*_1thread_pair*.json), the fine-tuned network's test mAP
#   against the frozen probe's was -0.04 / -0.00 at 100 labels, +0.005 to +0.024 at 200, +0.021 /
#   +0.029 at 300 and +0.04 to +0.05 at 400; the cross-fitting takes 160-180 s at 200 labels and
#   about 330 s at 400 on one thread, which is how much longer such a refit takes.
# - GPU, from 100: fine-tuned 0.507 against 0.445 for the frozen probe at 200 demo labels on an H200
#   (bench/results/label_efficiency_gpu_*, bench/gpu-lease.sh); seconds there.
SUGGEST_RULES: dict[str, dict[str, Any]] = {
    "cpu": {"finetune_from": 200},
    "gpu": {"finetune_from": 100},
}

# A preset's batch fitted to the project (``fitted_batch``), per device: (the least batch, the least
# steps an epoch): a batch over the least is cut so that a small project's epoch keeps at least 4
# steps. The CPU preset's own batch (64) is the least, so it changes nothing there today; it fits a
# bigger preset batch (256 was measured: see PRESETS) without a change to the callers.
FITTED_BATCH: dict[str, tuple[int, int]] = {"cpu": (64, 4)}


def fitted_batch(batch: int, images: int, kind: str) -> int:
    """The preset's ``batch`` for a project of ``images``: at most images / least steps, never under
    the least batch (nor over ``batch``). A device without a rule keeps ``batch``."""
    rule = FITTED_BATCH.get(kind)
    if rule is None:
        return batch
    least, steps = rule
    return max(min(batch, images // steps), min(batch, least))


def detector_fit(detector: dict[str, Any], rules: dict[str, Any], boxed: int) -> dict[str, Any]:
    """A fit's DetectorConfig fields for ``boxed`` submitted images with boxes: ``detector`` (the run's
    queued settings; a trainable_layers there is kept) adapted by ``rules`` (DETECTOR_RULES)."""
    fit = dict(detector)
    fit.setdefault("trainable_layers", 2 if boxed >= rules["finetune_from"] else 0)
    per_image, budget = rules.get("seconds_per_image"), fit.get("time_budget_s")
    if per_image and budget:
        fit["time_budget_s"] = float(min(budget, max(rules["min_seconds"], per_image * boxed)))
    return fit


# Images per second per 1,000 "stem pixels" (the feature map the first residual block sees, per
# image), fitted below the measured rates so that an estimate errs long, not short:
# CPU (2 cores, bench/results/pretrain_throughput_cpu*.json): 249 img/s at 32 px standard stem
# (64 stem pixels), 68 img/s at 64 px standard (256), 1.7 img/s at 64 px small stem (4,096; issue 13).
# GPU (H200, bench/results/pretrain_throughput_gpu_h200_src256.json): 6,960 img/s at 64 px small stem.
RATE_PER_KILOPIXEL = {"cpu": 7.0, "gpu": 25_000.0}
# Decoding the images into the cache and embedding them once after training, per image.
OVERHEAD_S_PER_IMAGE = {"cpu": 0.01, "gpu": 0.002}


# torch.compile of the pretraining step and its augmentations on a GPU: about 40 s of compilation
# (H200, torch 2.11, bench/results/gpu_h200_run2.log) for a step 1.3x faster than eager there
# (pretrain_throughput: 11,078 vs 7,325-8,509 img/s). It repays itself once the eager run would
# take longer than 40 / (1 - 1 / 1.3) = 173 s; shorter runs finish sooner eager. A CPU never
# compiles by default (minutes of compilation on 2 cores, no speed-up measured there).
COMPILE_SECONDS = 40.0
COMPILED_SPEEDUP = 1.3
COMPILE_MIN_EAGER_S = COMPILE_SECONDS / (1 - 1 / COMPILED_SPEEDUP)


def should_compile(*, kind: str, eager_estimate_s: float, processes: int = 1) -> bool:
    """Compile on one GPU when the run's eager estimate is over COMPILE_MIN_EAGER_S. Several GPUs
    (DistributedDataParallel) stay eager: that combination has never been measured here."""
    return kind == "gpu" and processes == 1 and eager_estimate_s > COMPILE_MIN_EAGER_S


def device_kind(device: str) -> str:
    """ "gpu" for a CUDA device or a GPU's name, else "cpu"."""
    lowered = (device or "").lower()
    return "cpu" if lowered in ("", "cpu") or lowered.startswith("cpu") else "gpu"


def stem_pixels(*, resolution: int, small_stem: bool | None) -> int:
    small = resolution <= 64 if small_stem is None else small_stem
    side = resolution if small else math.ceil(resolution / 4)  # the ImageNet stem: conv /2, max-pool /2
    return side * side


def images_per_s(*, config: dict[str, Any], kind: str) -> float:
    """The expected training rate of ``config`` on a device of ``kind`` ("cpu" or "gpu")."""
    return (
        RATE_PER_KILOPIXEL[kind]
        * 1000.0
        / stem_pixels(resolution=config["resolution"], small_stem=config.get("small_stem"))
    )


def estimate_seconds(
    *, config: dict[str, Any], images: int, kind: str, measured_images_per_s: float | None = None
) -> float:
    """Seconds from start to suggestions: decoding, training (epochs or the time budget, whichever
    ends first) and embedding. ``measured_images_per_s``: a rate this worker reached before on the
    same settings, which beats the table."""
    training = training_seconds(config=config, images=images, kind=kind, measured_images_per_s=measured_images_per_s)
    return training + images * OVERHEAD_S_PER_IMAGE[kind]


def training_seconds(
    *, config: dict[str, Any], images: int, kind: str, measured_images_per_s: float | None = None
) -> float:
    """The training part of estimate_seconds: epochs or the time budget, whichever ends first."""
    rate = measured_images_per_s or images_per_s(config=config, kind=kind)
    batch = max(1, min(int(config["batch_size"]), images))
    per_epoch = (images // batch) * batch / rate
    training: float = config["epochs"] * per_epoch
    if config.get("time_budget_s"):
        training = min(training, float(config["time_budget_s"]))
    return training


def describe_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def feature_options(config: dict[str, Any]) -> dict[str, bool]:
    """How a run's images become probe features (its config's "features"): "last" (the pooled last
    stage, 512), "multi" (pooled layer2..layer4, 896) or "multi_tta" (that, averaged with the mirror image)."""
    features = config.get("features", "last")
    return {"multi_layer": features in ("multi", "multi_tta"), "flip_tta": features == "multi_tta"}
