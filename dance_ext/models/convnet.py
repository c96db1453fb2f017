"""The DM / DANCE ConvNet (docs/ALGORITHMS.md §1.4, §3.10) and its norm / activation / pooling options."""
from __future__ import annotations

import torch
from torch import nn

from ..checks import positive_int
from .common import _choice, _Net

NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")
ACTS = ("relu", "sigmoid", "leakyrelu", "swish")
POOLS = ("avgpooling", "maxpooling", "none")


def _activation(act: str) -> nn.Module:
    if act == "relu":
        return nn.ReLU()
    if act == "sigmoid":
        return nn.Sigmoid()
    if act == "leakyrelu":
        return nn.LeakyReLU(0.01)
    return nn.SiLU()  # swish: x * sigmoid(x)


def _conv_norm(norm: str, width: int, h: int, w: int) -> nn.Module | None:
    if norm == "instancenorm":
        return nn.GroupNorm(width, width, affine=True)
    if norm == "batchnorm":
        return nn.BatchNorm2d(width)
    if norm == "layernorm":
        return nn.LayerNorm([width, h, w], elementwise_affine=True)
    if norm == "groupnorm":
        return nn.GroupNorm(4, width, affine=True)
    return None


class ConvNet(_Net):
    """DM / DANCE ConvNet: ``depth`` blocks of Conv3x3 -> norm -> act -> pool(2, 2), then Linear.

    The first conv has padding 3 when ``channels == 1`` (a 28x28 image becomes 32x32), else 1.
    Pooling floors odd sides. ``feature_dim`` = width * h * w after the trunk.
    """

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int], width: int = 128,
                 depth: int = 3, act: str = "relu", norm: str = "instancenorm", pool: str = "avgpooling"):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        size_text = f"{h}x{w}"
        width = positive_int("width", width)
        depth = positive_int("depth", depth)
        _choice("act", act, ACTS)
        _choice("norm", norm, NORMS)
        _choice("pool", pool, POOLS)
        if norm == "groupnorm" and width % 4:
            raise ValueError(f"width: norm='groupnorm' uses 4 groups and needs a multiple of 4, got {width}")

        layers: list[nn.Module] = []
        in_ch = channels
        for d in range(depth):
            pad = 3 if channels == 1 and d == 0 else 1
            layers.append(nn.Conv2d(in_ch, width, kernel_size=3, padding=pad))
            h, w = h + 2 * pad - 2, w + 2 * pad - 2
            norm_layer = _conv_norm(norm, width, h, w)
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(_activation(act))
            if pool != "none":
                if h < 2 or w < 2:
                    raise ValueError(f"depth/image_size: a {size_text} image is {h}x{w} at block {d + 1}'s "
                                     f"pooling, which would make a side 0; use depth <= {d} or a larger "
                                     f"image_size (got depth={depth})")
                layers.append(nn.AvgPool2d(2, 2) if pool == "avgpooling" else nn.MaxPool2d(2, 2))
                h, w = h // 2, w // 2
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.feature_shape = (width, h, w)
        self.feature_dim = width * h * w
        self.classifier = nn.Linear(self.feature_dim, self.num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)
