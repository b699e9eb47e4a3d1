"""Model-assisted labeling in pure PyTorch: no Django here, ever.

cache     decode each image once into a fixed-resolution uint8 store
augment   Barlow Twins views, batched on the training device
backbone  ResNet-18 + projector;  barlow  the loss;  lars  optimiser + schedule
train     pretraining with checkpoints, resume, progress and cancellation
distributed  several processes (GPUs) on one host: global batch statistics, DDP launch
embed     frozen features per image id;  probe  the multilabel linear probe
metrics   AP / mAP / F1 in one pass;  active  uncertainty for labeling order
projection  a 2-D map of the embeddings (PCA) for the dashboard
tracking  TensorBoard scalars and a profiler trace of a few steps

Names are re-exported lazily (PEP 562), so ``import labeling.ml`` costs nothing: a web
process that only needs a dataclass does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ImageCache": "cache", "AddResult": "cache", "decode_square": "cache", "store_dir": "cache",
    "ViewConfig": "augment", "VIEW1": "augment", "VIEW2": "augment", "two_views": "augment",
    "ModelConfig": "backbone", "BarlowTwins": "backbone", "load_backbone": "backbone",
    "barlow_twins_loss": "barlow", "BarlowTwinsLoss": "barlow",
    "LARS": "lars",
    "PretrainConfig": "train", "Runtime": "train", "Progress": "train", "TrainResult": "train",
    "pretrain": "train", "load_checkpoint": "train",
    "embed_images": "embed", "embed_ids": "embed", "save_embeddings": "embed", "load_embeddings": "embed",
    "ProbeConfig": "probe", "LinearProbe": "probe", "fit_probe": "probe",
    "Metrics": "metrics", "evaluate": "metrics",
    "uncertainty": "active", "most_uncertain_first": "active",
    "project_2d": "projection",
    "TrainLog": "tracking", "step_profiler": "tracking",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
