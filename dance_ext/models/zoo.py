"""Cross-architecture evaluation nets (DM repo networks.py, docs/ALGORITHMS.md §1.4). The originals are
sized for 28x28 (1 channel) / 32x32 (3 channels); the rules below keep them identical there and
make them work at any size from 8 to 128 px (see each class docstring)."""
from __future__ import annotations

import torch
from torch import nn

from .common import _Net


def _norm2d(norm: str, ch: int) -> nn.Module:
    # DM's "instancenorm" is GroupNorm with one channel per group.
    return nn.GroupNorm(ch, ch, affine=True) if norm == "instancenorm" else nn.BatchNorm2d(ch)


def _halve(kind: str, h: int, w: int, min_out: int = 1) -> tuple[nn.Module, int, int]:
    """2x2 stride-2 pooling that leaves unpooled an axis that would drop below ``min_out`` (so small
    images survive; min_out 2 where a norm layer follows: instance norm of a 1x1 map is degenerate
    and PyTorch rejects it)."""
    kh, kw = (2 if h >= 2 * min_out else 1), (2 if w >= 2 * min_out else 1)
    if kh == kw == 1:
        return nn.Identity(), h, w
    pool = nn.MaxPool2d((kh, kw), (kh, kw)) if kind == "max" else nn.AvgPool2d((kh, kw), (kh, kw))
    return pool, h // kh, w // kw


class MLP(_Net):
    """Linear(C*H*W, 128) -> ReLU -> Linear(128, 128) -> ReLU -> Linear(128, classes).

    The original hard-codes 28*28*1 or 32*32*3 inputs; here the first layer takes C*H*W.
    Features are the 128-d input of the last layer.
    """

    def __init__(self, channels: int, num_classes: int, image_size):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        self.body = nn.Sequential(nn.Flatten(1), nn.Linear(channels * h * w, 128), nn.ReLU(),
                                  nn.Linear(128, 128), nn.ReLU())
        self.feature_dim = 128
        self.classifier = nn.Linear(128, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class LeNet(_Net):
    """Conv5x5(6) -> ReLU -> MaxPool2 -> Conv5x5(16) -> ReLU -> MaxPool2 -> FC 120 -> FC 84 -> FC.

    First conv padding 2 for 1 channel, else 0; second conv unpadded, as the original. Size rules:
    a conv whose output with that padding would be < 2 on an axis uses padding 2 there; pooling
    skips axes of size 1; the first FC takes 16*h*w of the actual map (16*5*5 at 28/32 px, as the
    original). Features are the 84-d input of the last layer.
    """

    def __init__(self, channels: int, num_classes: int, image_size):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        layers: list[nn.Module] = []
        in_ch = channels
        for out_ch, pad in ((6, 2 if channels == 1 else 0), (16, 0)):
            ph = pad if h + 2 * pad - 4 >= 2 else 2
            pw = pad if w + 2 * pad - 4 >= 2 else 2
            layers += [nn.Conv2d(in_ch, out_ch, kernel_size=5, padding=(ph, pw)), nn.ReLU()]
            h, w = h + 2 * ph - 4, w + 2 * pw - 4
            pool, h, w = _halve("max", h, w)
            layers.append(pool)
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(1), nn.Linear(16 * h * w, 120), nn.ReLU(), nn.Linear(120, 84),
                                nn.ReLU())
        self.feature_dim = 84
        self.classifier = nn.Linear(84, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class AlexNet(_Net):
    """DM's small AlexNet: Conv5x5(128) [pad 4 for 1 channel, else 2] -> pool -> Conv5x5(192) -> pool
    -> Conv3x3(256) -> Conv3x3(192) -> Conv3x3(192) -> pool, ReLU after each conv (BatchNorm before it
    when ``batchnorm``), then Linear. Features are the flattened trunk output: 192*4*4 at 28/32 px as
    the original, 192*h*w of the actual map elsewhere; pooling skips axes of size 1.
    """

    def __init__(self, channels: int, num_classes: int, image_size, batchnorm: bool = False):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        layers: list[nn.Module] = []
        in_ch = channels
        plan = ((128, 5, 4 if channels == 1 else 2, True), (192, 5, 2, True), (256, 3, 1, False),
                (192, 3, 1, False), (192, 3, 1, True))
        for out_ch, k, pad, pool_after in plan:
            layers.append(nn.Conv2d(in_ch, out_ch, kernel_size=k, padding=pad))
            h, w = h + 2 * pad - k + 1, w + 2 * pad - k + 1
            if batchnorm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU())
            if pool_after:
                pool, h, w = _halve("max", h, w)
                layers.append(pool)
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.feature_dim = 192 * h * w
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)


class VGG11(_Net):
    """VGG11 (64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M) with Conv3x3 -> norm -> ReLU; the
    first conv has padding 3 for 1 channel. Norm is instance norm (GroupNorm(C, C)) or BatchNorm.
    Size rules: a max-pooling skips an axis that would drop below 2 (below 1 for the last one, which no
    norm follows), and a global average pool precedes the classifier (the map is already 1x1 at
    28/32 px, so this matches the original there). Features: 512-d.
    """

    def __init__(self, channels: int, num_classes: int, image_size, norm: str = "instancenorm"):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        layers: list[nn.Module] = []
        in_ch = channels
        plan = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
        for i, v in enumerate(plan):
            if v == "M":
                pool, h, w = _halve("max", h, w, min_out=2 if i < len(plan) - 1 else 1)
                layers.append(pool)
                continue
            pad = 3 if channels == 1 and i == 0 else 1
            layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=pad), _norm2d(norm, v), nn.ReLU()]
            h, w = h + 2 * pad - 2, w + 2 * pad - 2
            in_ch = v
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
        self.features = nn.Sequential(*layers)
        self.feature_dim = 512
        self.classifier = nn.Linear(512, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _BasicBlock(nn.Module):
    """ResNet basic block, optionally downsampling by 2 (``down``). Plain: stride-2 3x3 conv (and 1x1
    shortcut). ``avgpool_down`` (the "_AP" variant): stride-1 convs + 2x2 average pooling. Either way
    an axis that would drop below 2 is not downsampled (a norm layer follows)."""

    def __init__(self, in_ch: int, out_ch: int, down: bool, norm: str, avgpool_down: bool, h: int, w: int):
        super().__init__()
        stride = (1, 1)
        self.down: nn.Module = nn.Identity()
        if down and avgpool_down:
            self.down, oh, ow = _halve("avg", h, w, min_out=2)
        elif down:
            # a 3x3 pad-1 stride-2 conv gives (n - 1) // 2 + 1, which is >= 2 from n = 3 up
            stride = (2 if h >= 3 else 1, 2 if w >= 3 else 1)
            oh, ow = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1
        else:
            oh, ow = h, w
        self.out_hw = (oh, ow)
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm2d(norm, out_ch)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = _norm2d(norm, out_ch)
        if down or in_ch != out_ch:
            proj = nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)
            shortcut_pool = _halve("avg", h, w, min_out=2)[0] if down and avgpool_down else nn.Identity()
            self.shortcut = nn.Sequential(proj, shortcut_pool, _norm2d(norm, out_ch))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.down(self.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(_Net):
    """ResNet18 for small images: Conv3x3(64) stem (stride 1, no max-pool), 4 stages of 2 basic blocks
    (64, 128, 256, 512; stride 1, 2, 2, 2). Norm: instance norm (GroupNorm(C, C)) or BatchNorm.

    Size rules: downsampling skips an axis that would drop below 2 (identical to the original at
    28/32 px). Plain: a global average pool gives 512 features (the original's avg_pool(4) on the
    4x4 map of 28/32 px images, generalised to any size). ``avgpool_down`` (ResNet18_AP): strided
    convs are replaced by stride-1 convs + 2x2 average pooling and the final map is flattened as the
    original (512*4*4 at 32 px, 512*3*3 at 28 px); larger maps are first average-pooled adaptively
    to at most 4x4, so features never exceed 8192.
    """

    def __init__(self, channels: int, num_classes: int, image_size, norm: str = "instancenorm",
                 avgpool_down: bool = False):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        self.stem = nn.Sequential(nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False),
                                  _norm2d(norm, 64), nn.ReLU())
        blocks: list[nn.Module] = []
        in_ch = 64
        for out_ch, down in ((64, False), (128, True), (256, True), (512, True)):
            for block_down in (down, False):
                block = _BasicBlock(in_ch, out_ch, block_down, norm, avgpool_down, h, w)
                h, w = block.out_hw
                blocks.append(block)
                in_ch = out_ch
        self.layers = nn.Sequential(*blocks)
        if avgpool_down:
            oh, ow = min(h, 4), min(w, 4)
            self.pool = nn.AdaptiveAvgPool2d((oh, ow))
            self.feature_dim = 512 * oh * ow
        else:
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.feature_dim = 512
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(self.stem(x))).flatten(1)
