"""Frozen backbone features for every image, aligned with the caller's ids."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from labeling.ml.augment import normalize, to_float
from labeling.ml.backbone import FEATURE_DIM, stage_widths
from labeling.ml.cache import ImageCache
from labeling.ml.files import replaced


# Multi-layer features: the pooled outputs of ResNet-18's last three stages (128 + 256 + 512). The
# earlier stages keep the small, local evidence (a small object, a texture) that the last stage's
# pooled vector, trained for invariance to crops and colour, may have averaged away.
MULTI_LAYER_DIM = 128 + 256 + 512


# How a multi-layer stage's map becomes a vector: its mean (the default), its maximum over positions
# (the strongest local evidence: "is there a star anywhere" rather than "how much star on average"),
# or both side by side.
POOLS = ("avg", "max", "avgmax")


def feature_dim(*, multi_layer: bool, backbone: nn.Module | None = None, pool: str = "avg") -> int:
    """The features' width: ResNet-18's (512, 896 multi-layer), or ``backbone``'s own; twice the
    multi-layer width when ``pool`` is "avgmax"."""
    per_stage = 2 if multi_layer and pool == "avgmax" else 1
    if backbone is None:
        return per_stage * MULTI_LAYER_DIM if multi_layer else FEATURE_DIM
    widths = stage_widths(backbone)
    return per_stage * sum(widths[1:]) if multi_layer else widths[-1]


def _pooled(stage: torch.Tensor, pool: str) -> torch.Tensor:
    if pool == "avg":
        return stage.mean((2, 3))
    if pool == "max":
        return stage.amax((2, 3))
    if pool == "avgmax":
        return torch.cat([stage.mean((2, 3)), stage.amax((2, 3))], dim=1)
    raise ValueError(f"pool must be one of {POOLS}, not {pool!r}")


def backbone_features(
    backbone: nn.Module, x: torch.Tensor, *, multi_layer: bool = False, pool: str = "avg"
) -> torch.Tensor:
    """(B, 3, R, R) -> (B, 512), or (B, 896) pooled (``pool``) from layer2..layer4 when ``multi_layer``."""
    if not multi_layer:
        pooled: torch.Tensor = backbone(x)
        return pooled
    return torch.cat([_pooled(stage, pool) for stage in stage_maps(backbone, x)], dim=1)


def stage_maps(backbone: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 3, R, R) -> the maps of layer2, layer3 and layer4."""
    net: Any = backbone  # torchvision's ResNet, whose stages nn.Module's types do not know
    l2 = net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))
    l3 = net.layer3(l2)
    return l2, l3, net.layer4(l3)


@torch.inference_mode()
def embed_images(
    backbone: nn.Module,
    images: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    multi_layer: bool = False,
    flip_tta: bool = False,
    pool: str = "avg",
) -> np.ndarray:
    """uint8 (N, R, R, 3) -> float16 (N, D) features, in the same order (D: ``feature_dim``).

    ``flip_tta``: the mean of the features of the image and of its mirror image (labels are
    invariant to a horizontal flip; the average is steadier than either view).

    The backbone runs in eval mode (BN running statistics, nothing updated) and is put back
    in the mode it came in; its weights are never touched. Rows are read a batch at a time,
    so a memory-mapped store of any size is fine.
    """
    device = torch.device(device)
    was_training = backbone.training
    backbone.eval().to(device)
    cuda = device.type == "cuda"
    out = np.empty((len(images), feature_dim(multi_layer=multi_layer, backbone=backbone, pool=pool)), dtype=np.float16)
    try:
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            chunk = chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(chunk))
            x = normalize(to_float(chunk.to(device)))  # (B, 3, R, R)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
                features = backbone_features(backbone, x, multi_layer=multi_layer, pool=pool)  # (B, D)
                if flip_tta:
                    features = 0.5 * (
                        features + backbone_features(backbone, x.flip(3), multi_layer=multi_layer, pool=pool)
                    )
            out[start : start + len(x)] = features.float().cpu().numpy().astype(np.float16)
    finally:
        backbone.train(was_training)
    return out


def save_embeddings(path: str | os.PathLike[str], ids: np.ndarray, features: np.ndarray) -> None:
    """One file per run: the ids and their features, row for row; written atomically."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) != len(features):
        raise ValueError(f"{len(ids)} ids but {len(features)} feature rows")
    with replaced(path) as f:
        np.savez(f, ids=ids, features=features.astype(np.float16))


def load_embeddings(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64 (N,), features float16 (N, D))."""
    with np.load(path) as data:
        return data["ids"], data["features"]


class _Rows:
    """A lazy, sliceable view of some rows of a (memory-mapped) array, in a given order."""

    def __init__(self, array: np.ndarray, rows: np.ndarray) -> None:
        self.array, self.rows = array, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, s: slice) -> npt.NDArray[Any]:
        picked: npt.NDArray[Any] = self.array[self.rows[s]]
        return picked


def embed_ids(
    backbone: nn.Module,
    cache: ImageCache,
    ids: np.ndarray,
    *,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    multi_layer: bool = False,
    flip_tta: bool = False,
) -> np.ndarray:
    """float16 (len(ids), D) features of the cached images, row i for ids[i]."""
    rows = cache.rows(ids)  # KeyError before any work if an id is not cached
    return embed_images(
        backbone,
        _Rows(cache.pixels(), rows),  # type: ignore[arg-type]
        batch_size=batch_size,
        device=device,
        multi_layer=multi_layer,
        flip_tta=flip_tta,
    )
