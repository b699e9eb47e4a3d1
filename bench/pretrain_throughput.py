"""Pretraining images/s: our pipeline vs a reference-style pipeline vs the model-only ceiling.

All three run the same training step (ResNet-18 + projector, Barlow Twins loss, LARS; bf16
and channels_last on CUDA), in the same process, so only the data path differs:

- ``ours``: images decoded once into the uint8 cache, uploaded to the device; both views made
  there in batches with per-sample parameters (labeling.ml.augment);
- ``reference``: as facebookresearch/barlowtwins: an image file per sample opened and decoded
  by PIL in DataLoader workers, torchvision/PIL transforms per image, batches copied over;
- ``ceiling``: two fixed, already-normalised batches on the device, no data work at all;
- ``trainer``: labeling.ml.train.pretrain itself (what the Celery task runs: learning-rate
  schedule, loss kept per step, an epoch-end sync), its per-epoch rate after the first epoch.

With ``--compile`` the step is ``torch.compile``d for every pipeline and, for ours and the
trainer, the augmentations too (labeling.ml.train.compiled_augment), as the trainer does.

    python -m bench.pretrain_throughput                         # full size (GPU)
    python -m bench.pretrain_throughput --batch 64 --steps 6 --images 256 --no-small-stem  # CPU
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms

from annotator.demo.scenes import render_scene
from bench._util import machine_load, write_result
from labeling.ml.augment import REFERENCE_RESOLUTION, apply_params, two_views
from labeling.ml.backbone import ModelConfig
from labeling.ml.cache import ImageCache
from labeling.ml.lars import LARS, parameter_groups
from labeling.ml.train import PretrainConfig, Runtime, build_model, compiled_augment, make_train_step, pretrain


# ---- the reference pipeline, as facebookresearch/barlowtwins main.py (sigma scaled to our size) ----


class GaussianBlur:
    def __init__(self, p: float, scale: float) -> None:
        self.p, self.scale = p, scale

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() < self.p:
            sigma = (random.random() * 1.9 + 0.1) * self.scale
            return img.filter(ImageFilter.GaussianBlur(sigma))
        return img


class Solarization:
    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        return ImageOps.solarize(img) if random.random() < self.p else img


def reference_transform(size: int, blur_p: float, solarize_p: float) -> transforms.Compose:
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.RandomHorizontalFlip(p=0.5),
            transforms.RandomApply(
                [transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)], p=0.8
            ),
            transforms.RandomGrayscale(p=0.2),
            GaussianBlur(p=blur_p, scale=size / REFERENCE_RESOLUTION),
            Solarization(p=solarize_p),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )


class FileDataset(torch.utils.data.Dataset):
    """ImageFolder's work per sample: open the file, decode, convert, transform twice."""

    def __init__(self, paths: list[Path], size: int) -> None:
        self.paths = paths
        self.t1 = reference_transform(size, blur_p=1.0, solarize_p=0.0)
        self.t2 = reference_transform(size, blur_p=0.1, solarize_p=0.2)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        with open(self.paths[i], "rb") as f:
            img = Image.open(f).convert("RGB")
        return self.t1(img), self.t2(img)


# ---- timing ----


def timed(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    step: Callable,
    warmup: int,
    steps: int,
    batch: int,
    device: torch.device,
) -> float:
    """images/s over ``steps`` steps after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step(*next(batches))
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step(*next(batches))
    _sync(device)
    return steps * batch / (time.perf_counter() - t)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def fresh_step(config: PretrainConfig, device: torch.device, compile: bool) -> Callable:
    # LARS starts at lr 0 (the schedule is the trainer's job): the step does all its work, the
    # weights just stay put, so every pipeline times the same arithmetic on the same model.
    model = build_model(config).to(device)
    return make_train_step(model, LARS(parameter_groups(model), weight_decay=config.weight_decay), device, compile)


def our_batches(cache: ImageCache, batch: int, device: torch.device, seed: int, compile: bool = False) -> Iterator:
    data = torch.from_numpy(np.array(cache.pixels())).to(device)
    g = torch.Generator(device=device).manual_seed(seed)
    order_gen = torch.Generator().manual_seed(seed)
    apply = compiled_augment() if compile else apply_params
    while True:
        order = torch.randperm(len(data), generator=order_gen).to(device)
        for i in range(len(data) // batch):
            yield two_views(data[order[i * batch : (i + 1) * batch]], g, apply=apply)


def trainer_rate(cache: ImageCache, config: PretrainConfig, device: torch.device, compile: bool, epochs: int) -> float:
    """Median images/s of pretrain()'s epochs after the first (which holds any compilation)."""
    rates: list[float] = []
    steps = len(cache) // config.batch_size
    run_config = PretrainConfig(model=config.model, batch_size=config.batch_size, epochs=epochs, warmup_epochs=1)
    pretrain(
        run_config,
        np.array(cache.pixels()),
        Runtime(device=device, compile=compile, log_every=steps, on_progress=lambda p: rates.append(p.images_per_s)),
    )
    return float(np.median(rates[1:]))


def reference_batches(paths: list[Path], size: int, batch: int, workers: int, device: torch.device) -> Iterator:
    loader = torch.utils.data.DataLoader(
        FileDataset(paths, size),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    while True:
        for y1, y2 in loader:
            yield y1.to(device, non_blocking=True), y2.to(device, non_blocking=True)


def ceiling_batches(batch: int, size: int, device: torch.device) -> Iterator:
    y1, y2 = torch.randn(2, batch, 3, size, size, device=device, generator=torch.Generator(device).manual_seed(0))
    while True:
        yield y1, y2


def stage_costs(
    paths: list[Path], cache: ImageCache, config: PretrainConfig, batch: int, device: torch.device, samples: int = 128
) -> dict:
    """Milliseconds per image (one pair of views) of each stage, each run alone in this process.

    What bounds the ratio: ours takes at least model + ours_augment per image, and the
    reference at most model + reference work (its workers run the data work serially with the
    model at worst), so ours / reference <= (model + reference) / (model + ours).
    """
    ds = FileDataset(paths, config.model.resolution)
    n = min(samples, len(paths))
    t = time.perf_counter()
    for i in range(n):
        with open(paths[i], "rb") as f:
            Image.open(f).convert("RGB")
    decode = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for i in range(n):
        ds[i]
    reference = (time.perf_counter() - t) / n
    data = torch.from_numpy(np.array(cache.pixels()[np.arange(batch) % len(cache)])).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    step = fresh_step(config, device, False)
    y1, y2 = two_views(data, g)
    step(y1, y2)
    _sync(device)
    reps = 3
    t = time.perf_counter()
    for _ in range(reps):
        two_views(data, g)
    _sync(device)
    ours = (time.perf_counter() - t) / reps / batch
    t = time.perf_counter()
    for _ in range(reps):
        step(y1, y2)
    _sync(device)
    model = (time.perf_counter() - t) / reps / batch
    ms = {
        "reference_decode_only": decode,
        "reference_decode_and_transforms": reference,
        "ours_two_views": ours,
        "model_step": model,
    }
    return {k: round(v * 1e3, 3) for k, v in ms.items()}


def _write(i: int, source: int, root: Path) -> Path:
    path = root / f"{i:06d}.jpg"
    render_scene(i, size=(source, source)).image.save(path, quality=90)
    return path


def write_sources(n: int, source: int, root: Path) -> list[Path]:
    """n scene JPEGs, written on every core (forked: call before any CUDA work)."""
    with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_write, range(n), [source] * n, [root] * n, chunksize=64))


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--source", type=int, default=256, help="size of the JPEG files the reference decodes")
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument(
        "--workers",
        default=str(min(15, max(1, (os.cpu_count() or 2) - 1))),
        help="comma-separated DataLoader worker counts to try for the reference; the best is kept",
    )
    p.add_argument("--no-small-stem", action="store_true")
    p.add_argument("--projector", default="2048-2048-2048")
    p.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    p.add_argument("--trainer-epochs", type=int, default=4, help="epochs of pretrain() to time (0: skip)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    model = ModelConfig(
        resolution=args.resolution,
        small_stem=False if args.no_small_stem else None,
        projector=tuple(int(d) for d in args.projector.split("-")),
    )
    config = PretrainConfig(model=model, batch_size=args.batch)
    figures: dict = {
        "settings": {k: v for k, v in vars(args).items()},
        "small_stem": model.uses_small_stem,
        "images_per_s": {},
    }
    rates = figures["images_per_s"]

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths = write_sources(args.images, args.source, Path(tmp))
        print(f"wrote {len(paths)} JPEGs of {args.source} px in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        cache = ImageCache(Path(tmp) / "cache", args.resolution)
        cache.add(np.arange(len(paths)), paths, workers=os.cpu_count() or 1)
        figures["cache_build_s"] = round(time.perf_counter() - t, 2)
        print(f"cache: {len(cache)} images decoded once in {figures['cache_build_s']} s")

        figures["ms_per_image"] = costs = stage_costs(paths, cache, config, args.batch, device)
        print("ms per image, each stage alone:", costs)
        # Eager first, then the reference, and the figures are written; then the compiled runs
        # (minutes of compilation) and they are written again: a cut-short run keeps the first.
        eager_step = fresh_step(config, device, False)
        measure(figures, cache, config, args, device, eager_step, compile=False)
        reference = {}
        for workers in (int(w) for w in args.workers.split(",")):
            reference[workers] = timed(
                reference_batches(paths, args.resolution, args.batch, workers, device),
                eager_step,
                args.warmup,
                args.steps,
                args.batch,
                device,
            )
            print(f"reference, {workers} workers: {reference[workers]:.0f} images/s")
        best_workers = max(reference, key=reference.get)
        rates["reference"] = reference[best_workers]
        figures["reference_by_workers"] = reference
        figures["reference_workers"] = best_workers
        name = "pretrain_throughput" + ("" if device.type == "cuda" else "_cpu")
        report(figures, device, name, load_start)
        if args.compile:
            try:
                compiled_step = fresh_step(config, device, True)
            except Exception as e:  # a compiler failure must not lose the other figures
                compiled_step = None
                figures.setdefault("errors", {})["compiled"] = repr(e)[:2000]
            if compiled_step is not None:
                measure(figures, cache, config, args, device, compiled_step, compile=True)
            report(figures, device, name, load_start)


def measure(
    figures: dict,
    cache: ImageCache,
    config: PretrainConfig,
    args: argparse.Namespace,
    device: torch.device,
    step: Callable,
    compile: bool,
) -> None:
    """Ceiling, ours and the trainer, eager or compiled. The ceiling and ours share one step
    (its learning rate is 0, so the weights never move): the same model, compiled once."""
    rates = figures["images_per_s"]
    tag = "_compiled" if compile else ""
    try:
        rates["ceiling" + tag] = timed(
            ceiling_batches(args.batch, args.resolution, device), step, args.warmup, args.steps, args.batch, device
        )
        print(f"ceiling{tag}: {rates['ceiling' + tag]:.0f} images/s")
        rates["ours" + tag] = timed(
            our_batches(cache, args.batch, device, 0, compile), step, args.warmup, args.steps, args.batch, device
        )
        print(f"ours{tag}: {rates['ours' + tag]:.0f} images/s")
        if args.trainer_epochs > 1:
            rates["trainer" + tag] = trainer_rate(cache, config, device, compile, args.trainer_epochs)
            print(f"trainer{tag}: {rates['trainer' + tag]:.0f} images/s")
    except Exception as e:  # a compiler failure must not lose the other figures
        figures.setdefault("errors", {})["compiled" if compile else "eager"] = repr(e)[:2000]
        print(f"{'compiled' if compile else 'eager'} run failed: {e!r}")


def report(figures: dict, device: torch.device, name: str, load_start: tuple[float, ...]) -> None:
    rates, costs = figures["images_per_s"], figures["ms_per_image"]
    best_ours = max(v for k, v in rates.items() if k.startswith("ours"))
    best_ceiling = max(v for k, v in rates.items() if k.startswith("ceiling"))
    figures["ratios"] = {
        "ours_over_reference": best_ours / rates["reference"],
        "ours_over_ceiling": rates["ours"] / rates["ceiling"],
        "best_ours_over_best_ceiling": best_ours / best_ceiling,
    }
    if "ours_compiled" in rates:
        figures["ratios"]["ours_compiled_over_ceiling_compiled"] = rates["ours_compiled"] / rates["ceiling_compiled"]
    trainers = [v for k, v in rates.items() if k.startswith("trainer")]
    if trainers:
        figures["ratios"]["best_trainer_over_best_ceiling"] = max(trainers) / best_ceiling
        figures["ratios"]["best_trainer_over_reference"] = max(trainers) / rates["reference"]
    if device.type == "cuda":
        figures["targets_met"] = {
            "ours_ge_0.8_of_compiled_ceiling": best_ours >= 0.8 * best_ceiling,
            "ours_ge_8x_reference": best_ours >= 8 * rates["reference"],
        }
    else:
        # The most ours could gain from the stage costs: as if the reference's data work never
        # overlapped the model step at all (it does overlap, in its workers, so less in practice).
        figures["ratios"]["ours_over_reference_bound"] = (
            costs["model_step"] + costs["reference_decode_and_transforms"]
        ) / (costs["model_step"] + costs["ours_two_views"])
    for key, value in figures["ratios"].items():
        print(f"{key}: {value:.2f}")
    figures["load_average"] = machine_load(load_start)
    write_result(name, figures)


if __name__ == "__main__":
    main()
