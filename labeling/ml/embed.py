"""Frozen backbone features for every image, aligned with the caller's ids."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from labeling.ml.augment import normalize, to_float
from labeling.ml.backbone import FEATURE_DIM
from labeling.ml.cache import ImageCache


@torch.inference_mode()
def embed_images(backbone: nn.Module, images: np.ndarray | torch.Tensor, *, batch_size: int = 512,
                 device: str | torch.device = "cpu") -> np.ndarray:
    """uint8 (N, R, R, 3) -> float16 (N, 512) features, in the same order.

    The backbone runs in eval mode (BN running statistics, nothing updated) and is put back
    in the mode it came in; its weights are never touched. Rows are read a batch at a time,
    so a memory-mapped store of any size is fine.
    """
    device = torch.device(device)
    was_training = backbone.training
    backbone.eval().to(device)
    cuda = device.type == "cuda"
    out = np.empty((len(images), FEATURE_DIM), dtype=np.float16)
    try:
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            chunk = chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(chunk))
            x = normalize(to_float(chunk.to(device)))  # (B, 3, R, R)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
                features = backbone(x)  # (B, 512)
            out[start:start + len(x)] = features.float().cpu().numpy().astype(np.float16)
    finally:
        backbone.train(was_training)
    return out


def save_embeddings(path: str | os.PathLike, ids: np.ndarray, features: np.ndarray) -> None:
    """One file per run: the ids and their features, row for row; written atomically."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) != len(features):
        raise ValueError(f"{len(ids)} ids but {len(features)} feature rows")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, ids=ids, features=features.astype(np.float16))
    os.replace(tmp, path)


def load_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64 (N,), features float16 (N, D))."""
    with np.load(path) as data:
        return data["ids"], data["features"]


class _Rows:
    """A lazy, sliceable view of some rows of a (memory-mapped) array, in a given order."""

    def __init__(self, array: np.ndarray, rows: np.ndarray) -> None:
        self.array, self.rows = array, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, s: slice) -> np.ndarray:
        return self.array[self.rows[s]]


def embed_ids(backbone: nn.Module, cache: ImageCache, ids: np.ndarray, *, batch_size: int = 512,
              device: str | torch.device = "cpu") -> np.ndarray:
    """float16 (len(ids), 512) features of the cached images, row i for ids[i]."""
    rows = cache.rows(ids)  # KeyError before any work if an id is not cached
    return embed_images(backbone, _Rows(cache.pixels(), rows), batch_size=batch_size,  # type: ignore[arg-type]
                        device=device)
