"""A box detector on the project's own backbone: torchvision's FCOS over a feature pyramid on the
Barlow Twins ResNet-18, trained from the boxes people submit.

- Images are **letterboxed** to a square of ``size`` px (the whole image scaled to fit, aspect kept,
  padded with the normalisation mean so the padding reads as zero); boxes go in and come out in
  image pixels, the conversion is here and nowhere else (``to_letterbox`` / ``from_letterbox``).
- The backbone starts from a Barlow Twins checkpoint (``load_backbone``) or random weights; its
  BatchNorms become ``FrozenBatchNorm2d`` (detection batches are small: running statistics learned
  on the pretraining's big batches are kept) and its stages are frozen except the top
  ``trainable_layers``, so a first fit trains the pyramid and the head only.
- Training is seeded by (seed, epoch) for the order and (seed, step) for the flips, checkpointed
  every ``checkpoint_every`` steps with config + state + step, so a resumed run repeats the
  uninterrupted one; ``should_stop`` is checked every step.
- Always ``weights=None``: nothing is downloaded.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import FrozenBatchNorm2d, box_iou
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from labeling.ml.augment import IMAGENET_MEAN, IMAGENET_STD, normalize, to_float
from labeling.ml.backbone import resnet18_backbone, stage_widths
from labeling.ml.files import replaced
from labeling.ml.pace import Pace

CHECKPOINT_VERSION = 1
# The stages a fine-tune unfreezes, from the top: trainable_layers=2 trains layer4 and layer3.
STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")
PAD_VALUE = tuple(round(255 * m) for m in IMAGENET_MEAN)  # normalises to ~0

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


# ---------------------------------------------------------------------------------------------
# Geometry: image pixels <-> letterbox pixels <-> normalised


@dataclass(frozen=True)
class Letterbox:
    """Where an image of ``width`` x ``height`` lands in a ``size`` square."""

    width: int
    height: int
    size: int
    scale_x: float  # letterbox px per image px (the resized width over the image's: rounding kept exact)
    scale_y: float
    pad_x: int
    pad_y: int

    @classmethod
    def fit(cls, width: int, height: int, size: int) -> "Letterbox":
        if width <= 0 or height <= 0 or size <= 0:
            raise ValueError(f"bad sizes: {width}x{height} into {size}")
        scale = size / max(width, height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        return cls(width, height, size, new_w / width, new_h / height, (size - new_w) // 2, (size - new_h) // 2)

    @property
    def inner(self) -> tuple[int, int]:
        """The resized image's (width, height) inside the square."""
        return round(self.width * self.scale_x), round(self.height * self.scale_y)


def letterbox_image(image: npt.NDArray[np.uint8], size: int) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """(H, W, 3) uint8 -> (size, size, 3) uint8 and where the image went."""
    height, width = image.shape[:2]
    box = Letterbox.fit(width, height, size)
    inner_w, inner_h = box.inner
    resized = Image.fromarray(image).resize((inner_w, inner_h), Image.Resampling.BILINEAR)
    out = np.empty((size, size, 3), dtype=np.uint8)
    out[:] = np.asarray(PAD_VALUE, dtype=np.uint8)
    out[box.pad_y : box.pad_y + inner_h, box.pad_x : box.pad_x + inner_w] = np.asarray(resized, dtype=np.uint8)
    return out, box


def to_letterbox(boxes: npt.ArrayLike, box: Letterbox) -> FloatArray:
    """(N, 4) x, y, w, h in image pixels -> (N, 4) x0, y0, x1, y1 in letterbox pixels."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = b[:, 0] * box.scale_x + box.pad_x
    y0 = b[:, 1] * box.scale_y + box.pad_y
    x1 = (b[:, 0] + b[:, 2]) * box.scale_x + box.pad_x
    y1 = (b[:, 1] + b[:, 3]) * box.scale_y + box.pad_y
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)


def from_letterbox(boxes: npt.ArrayLike, box: Letterbox) -> FloatArray:
    """(N, 4) x0, y0, x1, y1 in letterbox pixels -> (N, 4) x, y, w, h in image pixels, clipped to the image."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.clip((b[:, 0] - box.pad_x) / box.scale_x, 0, box.width)
    y0 = np.clip((b[:, 1] - box.pad_y) / box.scale_y, 0, box.height)
    x1 = np.clip((b[:, 2] - box.pad_x) / box.scale_x, 0, box.width)
    y1 = np.clip((b[:, 3] - box.pad_y) / box.scale_y, 0, box.height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.float32)


def normalise(boxes: npt.ArrayLike, width: int, height: int) -> FloatArray:
    """(N, 4) x, y, w, h in image pixels -> fractions of the image's width and height."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (b / np.array([width, height, width, height], dtype=np.float64)).astype(np.float32)


def denormalise(boxes: npt.ArrayLike, width: int, height: int) -> FloatArray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (b * np.array([width, height, width, height], dtype=np.float64)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class DetectorConfig:
    num_classes: int
    size: int = 256  # letterboxed square side; a multiple of 32 (the pyramid's coarsest level)
    small_stem: bool = False  # as the Barlow Twins backbone it starts from
    # A multiple of 32, at least 64: FCOS's head uses GroupNorm(32), and one channel per group fails
    # on a 1x1 level (P7 of a small input) for a single image.
    fpn_channels: int = 128
    trainable_layers: int = 0  # backbone stages trained, from the top (0: frozen; 5: all)
    steps: int = 300  # with a time budget, only the cap
    # Train for this many seconds (the warm-up + cosine schedule laid over the steps they buy, as a
    # budgeted pretraining does: labeling.ml.pace); None: train for ``steps``.
    time_budget_s: float | None = None
    batch_size: int = 8
    lr: float = 1e-3
    backbone_lr_factor: float = 0.1  # unfrozen stages learn slower than the new pyramid and head
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    hflip: bool = True
    # Re-estimate the backbone's BatchNorm statistics on the letterboxed training images before they
    # are frozen: a backbone pretrained at 32 px sees other activation statistics at 128 px and more.
    recalibrate_bn: bool = True
    seed: int = 0
    score_thresh: float = 0.05  # low: the precision-targeted thresholds decide what is confident
    nms_thresh: float = 0.6
    detections_per_img: int = 100

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError("a detector needs at least one class")
        if self.size % 32 or self.fpn_channels % 32 or self.fpn_channels < 64:
            raise ValueError("size must be a multiple of 32, fpn_channels a multiple of 32 from 64")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError("time_budget_s must be a positive number of seconds, or None")
        if not 0 <= self.trainable_layers <= len(STAGES):
            raise ValueError(f"trainable_layers must be 0..{len(STAGES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DetectorConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def strides(self) -> tuple[int, ...]:
        """Strides of the five pyramid levels (layer2..layer4, P6, P7)."""
        first = 2 if self.small_stem else 8  # the small stem keeps full resolution before layer1
        return tuple(first * 2**k for k in range(5))


def _freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Every BatchNorm2d -> FrozenBatchNorm2d with the same statistics and affine parameters."""
    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        with torch.no_grad():
            if module.weight is not None and module.bias is not None:
                frozen.weight.copy_(module.weight)
                frozen.bias.copy_(module.bias)
            if module.running_mean is not None and module.running_var is not None:
                frozen.running_mean.copy_(module.running_mean)
                frozen.running_var.copy_(module.running_var)
        replaced: nn.Module = frozen
        return replaced
    for name, child in module.named_children():
        setattr(module, name, _freeze_batchnorm(child))
    return module


RECALIBRATION_IMAGES = 512


@torch.no_grad()
def recalibrate_batchnorm(
    backbone: nn.Module, pixels: npt.NDArray[np.uint8], *, device: torch.device, batch_size: int = 32
) -> None:
    """Every BatchNorm2d's running mean and variance re-estimated (a cumulative average) on these
    uint8 (N, S, S, 3) images, the weights untouched; the backbone is left in eval mode."""
    norms = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms or not len(pixels):
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # the plain average over every batch, not an exponential one
    backbone.to(device).train()
    for start in range(0, min(len(pixels), RECALIBRATION_IMAGES), batch_size):
        chunk = torch.from_numpy(np.ascontiguousarray(pixels[start : start + batch_size])).to(device)
        backbone(normalize(to_float(chunk)))  # (B, 3, S, S) in; only the statistics matter
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    backbone.eval()


def build_detector(config: DetectorConfig, backbone: nn.Module | None = None) -> FCOS:
    """FCOS over a pyramid on ``backbone`` (a ResNet-18 from ``labeling.ml.backbone``; random when None)."""
    net = backbone if backbone is not None else resnet18_backbone(small_stem=config.small_stem)
    net = _freeze_batchnorm(net)
    trained = STAGES[: config.trainable_layers]
    for name, parameter in net.named_parameters():
        parameter.requires_grad_(name.split(".")[0] in trained)
    c = config.fpn_channels
    body = BackboneWithFPN(
        net,
        return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
        in_channels_list=list(stage_widths(net)[1:]),  # 128, 256, 512 at ResNet-18's own width
        out_channels=c,
        extra_blocks=LastLevelP6P7(c, c),
    )
    # FCOS reads an anchor's size as its level's scale (the regression range is 4x..8x it).
    anchors = AnchorGenerator(tuple((s,) for s in config.strides), ((1.0,),) * len(config.strides))
    model: FCOS = FCOS(
        body,
        num_classes=config.num_classes,
        min_size=config.size,
        max_size=config.size,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        anchor_generator=anchors,
        score_thresh=config.score_thresh,
        nms_thresh=config.nms_thresh,
        detections_per_img=config.detections_per_img,
    )
    return model


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class DetectorProgress:
    epoch: int
    step: int
    steps_per_epoch: int
    loss: float
    images_per_s: float
    eta_s: float | None


@dataclass
class DetectorRuntime:
    device: str = "cpu"
    checkpoint_path: str | os.PathLike[str] | None = None
    checkpoint_every: int = 50
    on_progress: Callable[[DetectorProgress], None] | None = None
    should_stop: Callable[[], bool] | None = None
    # Asked before each step after the session's first: True ends the session at a checkpoint with
    # status "yielded" (the caller queues the fit again; it resumes from there, its budget intact).
    should_yield: Callable[[], bool] | None = None
    progress_every_s: float = 5.0
    clock: Callable[[], float] = time.monotonic  # injectable, so tests can check time-based behaviour


@dataclass
class DetectorResult:
    model: FCOS
    status: str  # "finished", "cancelled" or "yielded" (stopped at a checkpoint, to resume later)
    steps_done: int
    losses: list[float] = field(default_factory=list)  # one per step, this session's and the resumed ones'


@dataclass
class TrainingSet:
    """Letterboxed images and their targets in letterbox pixels, ready for the model."""

    pixels: npt.NDArray[np.uint8]  # (N, S, S, 3)
    boxes: list[FloatArray]  # (n_i, 4) x0, y0, x1, y1 letterbox pixels
    labels: list[IntArray]  # (n_i,) in [0, num_classes)


def training_set(
    images: Sequence[npt.NDArray[np.uint8]], boxes: Sequence[npt.ArrayLike], labels: Sequence[npt.ArrayLike], size: int
) -> TrainingSet:
    """Images of any size with boxes (x, y, w, h image pixels) -> letterboxed. An image without boxes
    is a negative: every location of it is background."""
    if not len(images) == len(boxes) == len(labels):
        raise ValueError("images, boxes and labels must be as many")
    pixels = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        pixels[i] = letterbox_image(image, size)[0]
    return letterboxed_set(pixels, [(image.shape[1], image.shape[0]) for image in images], boxes, labels)


def letterboxed_set(
    pixels: npt.NDArray[np.uint8],
    sizes: Sequence[tuple[int, int]],
    boxes: Sequence[npt.ArrayLike],
    labels: Sequence[npt.ArrayLike],
) -> TrainingSet:
    """Images letterboxed already (N, S, S, 3), e.g. read from the detector's image cache, with each
    original's (width, height) and its boxes (x, y, w, h image pixels) -> a TrainingSet."""
    if not len(pixels) == len(sizes) == len(boxes) == len(labels):
        raise ValueError("pixels, sizes, boxes and labels must be as many")
    size = int(pixels.shape[1])
    out_boxes, out_labels = [], []
    for (width, height), b, lab in zip(sizes, boxes, labels):
        xyxy = to_letterbox(b, Letterbox.fit(width, height, size))
        keep = (xyxy[:, 2] - xyxy[:, 0] >= 1) & (xyxy[:, 3] - xyxy[:, 1] >= 1)  # degenerate after scaling
        out_boxes.append(xyxy[keep])
        out_labels.append(np.asarray(lab, dtype=np.int64).reshape(-1)[keep])
    return TrainingSet(pixels, out_boxes, out_labels)


def _parameter_groups(model: FCOS, config: DetectorConfig) -> list[dict[str, Any]]:
    backbone: list[nn.Parameter] = []
    rest: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (backbone if name.startswith("backbone.body.") else rest).append(p)
    groups: list[dict[str, Any]] = [{"params": rest, "lr_factor": 1.0}]
    if backbone:
        groups.append({"params": backbone, "lr_factor": config.backbone_lr_factor})
    return groups


def _learning_rate(config: DetectorConfig, step: int, total_steps: int | None = None) -> float:
    """Linear warm-up, then cosine to 0 over ``total_steps`` (``config.steps`` unless a time budget
    estimates fewer)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, (total_steps or config.steps) - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - config.warmup_steps) / span)))


def _batch(
    data: TrainingSet, index: npt.NDArray[np.int64], flips: npt.NDArray[np.bool_], device: torch.device
) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    size = data.pixels.shape[1]
    x = torch.from_numpy(data.pixels[index]).to(device).permute(0, 3, 1, 2).float().div_(255)  # (B, 3, S, S)
    images, targets = [], []
    for k, i in enumerate(index.tolist()):
        image, boxes = x[k], torch.from_numpy(data.boxes[i]).to(device)
        if flips[k]:
            image = image.flip(2)
            boxes = torch.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], dim=1)
        images.append(image)
        targets.append({"boxes": boxes.reshape(-1, 4), "labels": torch.from_numpy(data.labels[i]).to(device)})
    return images, targets


def train_detector(
    config: DetectorConfig,
    images: Sequence[npt.NDArray[np.uint8]] | TrainingSet,
    boxes: Sequence[npt.ArrayLike] = (),
    labels: Sequence[npt.ArrayLike] = (),
    *,
    backbone: nn.Module | None = None,
    runtime: DetectorRuntime | None = None,
) -> DetectorResult:
    """Fit on (images, boxes x/y/w/h in image pixels, labels 0..C-1), or on a prepared TrainingSet.

    Resumes from ``runtime.checkpoint_path`` when it holds this config's checkpoint (the backbone
    passed in is then overwritten by the checkpoint's weights)."""
    runtime = runtime or DetectorRuntime()
    data = images if isinstance(images, TrainingSet) else training_set(images, boxes, labels, config.size)
    n = len(data.pixels)
    if n == 0:
        raise ValueError("nothing to train on")
    device = torch.device(runtime.device)
    with torch.random.fork_rng(devices=[]):  # a random backbone, the pyramid and the head start the same for a seed
        torch.manual_seed(config.seed)
        if backbone is None:
            backbone = resnet18_backbone(small_stem=config.small_stem)
    resuming = runtime.checkpoint_path is not None and Path(runtime.checkpoint_path).exists()
    if config.recalibrate_bn and not resuming:  # a checkpoint's statistics replace them anyway
        recalibrate_batchnorm(backbone, data.pixels, device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        model = build_detector(config, backbone).to(device)
    optimizer = torch.optim.AdamW(_parameter_groups(model, config), lr=config.lr, weight_decay=config.weight_decay)
    step, losses, earlier_s = _resume(runtime.checkpoint_path, config, model, optimizer, device)
    per_epoch = max(1, math.ceil(n / config.batch_size))
    model.train()
    pace = Pace(budget_s=config.time_budget_s, cap_steps=config.steps, clock=runtime.clock, earlier_s=earlier_s)
    last_report = runtime.clock()
    status = "finished"

    def checkpoint() -> None:
        if runtime.checkpoint_path is not None:
            save_detector(
                runtime.checkpoint_path,
                model,
                config,
                optimizer=optimizer,
                step=step,
                losses=losses,
                elapsed_s=pace.elapsed(),
            )

    while step < config.steps and not pace.out_of_time():  # a fit whose time is up has finished
        if runtime.should_stop is not None and runtime.should_stop():
            status = "cancelled"
            break
        if runtime.should_yield is not None and pace.session_steps and runtime.should_yield():
            status = "yielded"
            break
        epoch, within = divmod(step, per_epoch)
        order = np.random.default_rng((config.seed, epoch)).permutation(n)
        index = order[within * config.batch_size : (within + 1) * config.batch_size].astype(np.int64)
        flips = np.random.default_rng((config.seed, 1_000_003, step)).random(len(index)) < 0.5
        flips &= config.hflip
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(config, step, pace.total_steps(step)) * group["lr_factor"]
        batch_images, targets = _batch(data, index, flips, device)
        loss_parts: dict[str, Tensor] = model(batch_images, targets)
        loss = sum(loss_parts.values(), torch.zeros((), device=device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite detector loss at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 10.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        step += 1
        pace.step_done()
        last = step == config.steps or pace.out_of_time()
        if step % runtime.checkpoint_every == 0 or last:
            checkpoint()
        now = runtime.clock()
        if runtime.on_progress is not None and (now - last_report >= runtime.progress_every_s or last):
            last_report = now
            rate = pace.reported_steps_per_s()
            runtime.on_progress(
                DetectorProgress(
                    epoch=step // per_epoch,
                    step=step,
                    steps_per_epoch=per_epoch,
                    loss=float(np.mean(losses[-per_epoch:])),
                    images_per_s=(rate or 0.0) * config.batch_size,
                    eta_s=pace.eta_s(step),
                )
            )
    if status != "finished" and pace.session_steps:
        checkpoint()
    model.eval()
    return DetectorResult(model=model, status=status, steps_done=step, losses=losses)


def _resume(
    path: str | os.PathLike[str] | None,
    config: DetectorConfig,
    model: FCOS,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> tuple[int, list[float], float]:
    """Steps done, losses and training seconds of the checkpoint's earlier sessions (0 for none)."""
    if path is None or not Path(path).exists():
        return 0, [], 0.0
    ckpt = torch.load(path, map_location=device, weights_only=True)
    if DetectorConfig.from_dict(ckpt["config"]) != config:
        raise ValueError(f"checkpoint {path} is for another detector config")
    model.load_state_dict(ckpt["model"])
    if "optimizer" in ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    return int(ckpt["step"]), [float(v) for v in ckpt["losses"]], float(ckpt.get("elapsed_s", 0.0))


def save_detector(
    path: str | os.PathLike[str],
    model: FCOS,
    config: DetectorConfig,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    losses: Sequence[float] = (),
    elapsed_s: float = 0.0,
) -> None:
    """Config, weights (and the optimiser while training), steps done, losses and training seconds
    (a budgeted fit resumes with what is left); written atomically."""
    payload: dict[str, Any] = {
        "version": CHECKPOINT_VERSION,
        "config": config.to_dict(),
        "model": model.state_dict(),
        "step": step,
        "losses": list(losses),
        "elapsed_s": elapsed_s,
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    with replaced(path) as f:  # a crash or a full disk mid-write never leaves a torn checkpoint
        torch.save(payload, f)


def load_detector(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[FCOS, DetectorConfig]:
    ckpt = torch.load(path, map_location=device, weights_only=True)
    config = DetectorConfig.from_dict(ckpt["config"])
    model = build_detector(config).to(device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), config


# ---------------------------------------------------------------------------------------------
# Prediction and matching


@dataclass(frozen=True)
class Detections:
    boxes: FloatArray  # (K, 4) x, y, w, h in image pixels
    scores: FloatArray  # (K,)
    labels: IntArray  # (K,) class index


@torch.inference_mode()
def predict(
    model: FCOS,
    images: Sequence[npt.NDArray[np.uint8]],
    config: DetectorConfig,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> list[Detections]:
    """Images of any size (H, W, 3) uint8 -> their detections in image pixels, best score first."""
    out: list[Detections] = []
    for start in range(0, len(images), batch_size):
        boxed = [letterbox_image(image, config.size) for image in images[start : start + batch_size]]
        out += _detect(model, np.stack([b[0] for b in boxed]), [b[1] for b in boxed], torch.device(device))
    return out


@torch.inference_mode()
def predict_letterboxed(
    model: FCOS,
    pixels: npt.NDArray[np.uint8],
    sizes: Sequence[tuple[int, int]],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> list[Detections]:
    """``predict`` on images letterboxed already (N, S, S, 3) (the detector's image cache), given each
    original's (width, height): the same detections, in image pixels."""
    size = int(pixels.shape[1])
    out: list[Detections] = []
    for start in range(0, len(pixels), batch_size):
        boxes = [Letterbox.fit(w, h, size) for w, h in sizes[start : start + batch_size]]
        out += _detect(model, np.asarray(pixels[start : start + batch_size]), boxes, torch.device(device))
    return out


def _detect(
    model: FCOS, pixels: npt.NDArray[np.uint8], boxes: list[Letterbox], device: torch.device
) -> list[Detections]:
    """One batch of letterboxed (B, S, S, 3) images -> detections mapped back through ``boxes``."""
    was_training = model.training
    model.eval().to(device)
    out: list[Detections] = []
    try:
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(device).permute(0, 3, 1, 2).float().div_(255)
        found: list[dict[str, Tensor]] = model(list(x))
        for box, f in zip(boxes, found):
            order = torch.argsort(f["scores"], descending=True)
            out.append(
                Detections(
                    boxes=from_letterbox(f["boxes"][order].float().cpu().numpy(), box),
                    scores=f["scores"][order].float().cpu().numpy().astype(np.float32),
                    labels=f["labels"][order].cpu().numpy().astype(np.int64),
                )
            )
    finally:
        model.train(was_training)
    return out


def match_detections(
    found: Detections, truth_boxes: npt.ArrayLike, truth_labels: npt.ArrayLike, iou: float = 0.5
) -> npt.NDArray[np.bool_]:
    """(K,) whether each detection (best score first) is a true positive: the same label as a truth
    box not matched yet by a better-scored detection, at IoU >= ``iou`` (the COCO AP50 rule)."""
    truth = np.asarray(truth_boxes, dtype=np.float32).reshape(-1, 4)
    truth_labels = np.asarray(truth_labels, dtype=np.int64).reshape(-1)
    correct = np.zeros(len(found.scores), dtype=bool)
    if not len(truth) or not len(found.scores):
        return correct
    overlap = box_iou(_xyxy(found.boxes), _xyxy(truth)).numpy()  # (K, T)
    overlap[found.labels[:, None] != truth_labels[None, :]] = 0
    taken = np.zeros(len(truth), dtype=bool)
    for k in range(len(found.scores)):
        candidates = np.where(taken, -1.0, overlap[k])
        best = int(np.argmax(candidates))
        if candidates[best] >= iou:
            taken[best], correct[k] = True, True
    return correct


def average_precision(scores: npt.ArrayLike, correct: npt.ArrayLike, truths: int) -> float | None:
    """AP of one label's detections pooled over images: sum over ranks of (R_k - R_(k-1)) P_k, no
    interpolation (as labeling.ml.metrics); None without a truth box."""
    if truths <= 0:
        return None
    s, c = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(c[order])
    precision = tp / np.arange(1, len(tp) + 1)
    return float((precision * c[order]).sum() / truths)


def _xyxy(boxes: npt.ArrayLike) -> Tensor:
    b = torch.as_tensor(np.asarray(boxes, dtype=np.float32)).reshape(-1, 4)
    return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1)


__all__ = [
    "DetectorConfig",
    "DetectorProgress",
    "DetectorResult",
    "DetectorRuntime",
    "Detections",
    "Letterbox",
    "TrainingSet",
    "average_precision",
    "build_detector",
    "recalibrate_batchnorm",
    "denormalise",
    "from_letterbox",
    "letterbox_image",
    "letterboxed_set",
    "load_detector",
    "match_detections",
    "normalise",
    "predict",
    "predict_letterboxed",
    "save_detector",
    "to_letterbox",
    "train_detector",
    "training_set",
]
