"""ResNet-18 backbone and the Barlow Twins projector.

Always ``weights=None``: the point of the project is to learn from the user's own images,
and a download at run time would make workers depend on the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

from labeling.ml.barlow import barlow_twins_loss, DEFAULT_LAMBDA
from labeling.ml.distributed import gather_batch

FEATURE_DIM = 512  # ResNet-18's pooled feature width
SMALL_STEM_MAX_RESOLUTION = 64
RESNET18_WIDTH = 64  # the first stage's channels; the stages have 1, 2, 4 and 8 times as many


@dataclass(frozen=True)
class ModelConfig:
    resolution: int = 64
    # None: small stem when resolution <= 64. The ImageNet stem (7x7/2 conv + maxpool) would
    # leave 16x16 maps from a 64 px image before the first block; CIFAR-style work uses 3x3/1.
    small_stem: bool | None = None
    projector: tuple[int, ...] = (2048, 2048, 2048)
    lambd: float = DEFAULT_LAMBDA
    # ResNet-18's own 64, or a narrower one (the same depth and blocks, every stage scaled): a CPU
    # can spend what a narrower network saves on larger feature maps (the small stem).
    width: int = RESNET18_WIDTH

    @property
    def uses_small_stem(self) -> bool:
        return self.resolution <= SMALL_STEM_MAX_RESOLUTION if self.small_stem is None else self.small_stem

    @property
    def feature_dim(self) -> int:
        return 8 * self.width


def resnet18_backbone(*, small_stem: bool, width: int = RESNET18_WIDTH) -> nn.Module:
    """ResNet-18 without its classifier: (B, 3, H, W) -> (B, 8 * width), 512 at its own width."""
    # zero_init_residual: each block starts as the identity, as in the reference.
    net: nn.Module = (
        torchvision.models.resnet18(weights=None, zero_init_residual=True)
        if width == RESNET18_WIDTH
        else _ScaledResNet18(width)
    )
    if small_stem:
        conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision does
        net.conv1 = conv1
        net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return net


class _ScaledResNet18(torchvision.models.ResNet):  # type: ignore[misc]  # torchvision is untyped here
    """torchvision's ResNet-18 (its blocks, layer names and initialisation) with ``width`` channels
    in the first stage instead of 64: its constructor fixes 64, so this one builds the stages itself."""

    def __init__(self, width: int) -> None:
        nn.Module.__init__(self)
        block = torchvision.models.resnet.BasicBlock
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, 2)
        self.layer2 = self._make_layer(block, 2 * width, 2, stride=2)
        self.layer3 = self._make_layer(block, 4 * width, 2, stride=2)
        self.layer4 = self._make_layer(block, 8 * width, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, 1000)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        for m in self.modules():
            if isinstance(m, block) and m.bn2.weight is not None:
                nn.init.constant_(m.bn2.weight, 0)


def stage_widths(backbone: nn.Module) -> tuple[int, int, int, int]:
    """The channels of a ResNet-18 backbone's four stages (64, 128, 256, 512 at its own width)."""
    net: Any = backbone
    return tuple(int(getattr(net, f"layer{i}")[-1].conv2.out_channels) for i in range(1, 5))  # type: ignore[return-value]


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
        self.backbone = resnet18_backbone(small_stem=config.uses_small_stem, width=config.width)
        self.projector = Projector(config.feature_dim, config.projector)

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
    net = resnet18_backbone(small_stem=config.uses_small_stem, width=config.width)
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
    "stage_widths",
    "count_parameters",
    "torch",
]
