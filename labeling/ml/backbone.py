"""ResNet-18 backbone and the Barlow Twins projector.

Always ``weights=None``: the point of the project is to learn from the user's own images,
and a download at run time would make workers depend on the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision
from torch import Tensor, nn

from labeling.ml.barlow import barlow_twins_loss, DEFAULT_LAMBDA
from labeling.ml.distributed import gather_batch

FEATURE_DIM = 512  # ResNet-18's pooled feature width
SMALL_STEM_MAX_RESOLUTION = 64


@dataclass(frozen=True)
class ModelConfig:
    resolution: int = 64
    # None: small stem when resolution <= 64. The ImageNet stem (7x7/2 conv + maxpool) would
    # leave 16x16 maps from a 64 px image before the first block; CIFAR-style work uses 3x3/1.
    small_stem: bool | None = None
    projector: tuple[int, ...] = (2048, 2048, 2048)
    lambd: float = DEFAULT_LAMBDA

    @property
    def uses_small_stem(self) -> bool:
        return self.resolution <= SMALL_STEM_MAX_RESOLUTION if self.small_stem is None else self.small_stem


def resnet18_backbone(*, small_stem: bool) -> nn.Module:
    """ResNet-18 without its classifier: (B, 3, H, W) -> (B, 512)."""
    # zero_init_residual: each block starts as the identity, as in the reference.
    net: nn.Module = torchvision.models.resnet18(weights=None, zero_init_residual=True)
    if small_stem:
        conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision does
        net.conv1 = conv1
        net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return net


class Projector(nn.Module):
    """(Linear-BN-ReLU) x (len(dims)-1), then Linear: (B, in_dim) -> (B, dims[-1])."""

    def __init__(self, in_dim: int, dims: tuple[int, ...]) -> None:
        super().__init__()
        if not dims:
            raise ValueError("the projector needs at least one layer")
        sizes = (in_dim, *dims)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            # No bias before BN: BN's shift makes it redundant (the reference does the same).
            layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self.net(x)
        return y


class BarlowTwins(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = resnet18_backbone(small_stem=config.uses_small_stem)
        self.projector = Projector(FEATURE_DIM, config.projector)

    def forward(self, y1: Tensor, y2: Tensor) -> Tensor:
        """Two augmented views (B, 3, H, W) each -> scalar loss."""
        # One backbone pass over both views would mix their BN statistics; the reference
        # runs them separately, and so do we.
        z1 = self.projector(self.backbone(y1))  # (B, D)
        z2 = self.projector(self.backbone(y2))  # (B, D)
        # Under torch.distributed each rank holds a slice of the batch: the loss's statistics are
        # the global batch's (see labeling.ml.distributed). A no-op in one process.
        z1, z2 = gather_batch(z1), gather_batch(z2)  # (world * B, D)
        return barlow_twins_loss(z1, z2, self.config.lambd)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def load_backbone(state_dict: dict[str, Tensor], config: ModelConfig) -> nn.Module:
    """A backbone from a BarlowTwins state dict (as a checkpoint holds it), in eval mode."""
    net = resnet18_backbone(small_stem=config.uses_small_stem)
    prefix = "backbone."
    net.load_state_dict({k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)})
    return net.eval()


__all__ = [
    "ModelConfig",
    "BarlowTwins",
    "Projector",
    "resnet18_backbone",
    "load_backbone",
    "FEATURE_DIM",
    "count_parameters",
    "torch",
]
