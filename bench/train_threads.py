"""The trainer's own speed by torch thread count: 1, 2 and the TRAIN_THREADS default (issue 20).

    python -m bench.train_threads [--threads 1 2 default] [--images 512] [--resolution 32] \
        [--batch 64] [--epochs 4] [--nice 0]

Each count runs in its own process (torch's thread pool is per process and set once), training
labeling.ml.train.pretrain on random uint8 images for ``--epochs`` epochs; the figure is the median
images/s of the epochs after the first. ``--nice 10`` runs them at the priority bin/worker gives a
worker. The 1-minute load average before and after each count is written beside it (and the run's
load averages with the CPU count): the figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", nargs="+", default=["1", "2", "default"])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--nice", type=int, default=0)
    parser.add_argument("--name", default="train_threads_cpu")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    if args.one:
        print("RESULT " + json.dumps(_rate(args)))
        return
    from twinlabel.settings import default_train_threads
    from bench._util import machine_load, write_result

    cores = len(os.sched_getaffinity(0))
    default = default_train_threads(cores=cores, web_on_host=True)
    figures = {}
    for label in args.threads:
        n = default if label == "default" else int(label)
        load_before = os.getloadavg()[0]
        out = subprocess.run(
            [
                "nice",
                "-n",
                str(args.nice),
                sys.executable,
                "-m",
                "bench.train_threads",
                "--one",
                str(n),
                "--images",
                str(args.images),
                "--resolution",
                str(args.resolution),
                "--batch",
                str(args.batch),
                "--epochs",
                str(args.epochs),
            ],
            cwd=root,
            capture_output=True,
            text=True,
            env={**os.environ, "SECRET_KEY": "bench"},
        )
        if out.returncode:
            raise SystemExit(out.stderr)
        result = json.loads(out.stdout.split("RESULT ", 1)[1])
        figures[f"{label} ({n})" if label == "default" else label] = {
            **result,
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        }
        print(f"threads {label} ({n}): {result['images_per_s']} images/s (epochs {result['epoch_rates']})")
    write_result(
        args.name,
        {
            "cores": cores,
            "default_threads": default,
            "settings": {k: v for k, v in vars(args).items() if k != "one"},
            "by_threads": figures,
            "load_average": machine_load(load_start),
            "note": "the figures compare only within this run.",
        },
    )


def _rate(args) -> dict:
    import numpy as np
    import torch

    from labeling.ml.backbone import ModelConfig
    from labeling.ml.train import PretrainConfig, Runtime, pretrain

    torch.set_num_threads(args.one)
    images = np.random.default_rng(0).integers(0, 256, (args.images, args.resolution, args.resolution, 3), np.uint8)
    config = PretrainConfig(
        model=ModelConfig(resolution=args.resolution, projector=(256, 256, 256)),
        batch_size=args.batch,
        epochs=args.epochs,
        warmup_epochs=1,
    )
    steps = args.images // args.batch
    rates: list[float] = []
    pretrain(config, images, Runtime(device="cpu", log_every=steps, on_progress=lambda p: rates.append(p.images_per_s)))
    return {
        "threads": torch.get_num_threads(),
        "images_per_s": round(float(np.median(rates[1:])), 1),
        "epoch_rates": [round(r, 1) for r in rates],
    }


if __name__ == "__main__":
    main()
