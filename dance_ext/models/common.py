"""Argument checks and the classifier head shared by every network."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (not isinstance(image_size, Sequence) or len(image_size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)):
        raise ValueError(f"image_size: expected a positive int or a pair (H, W) of positive ints, "
                         f"got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value


class _Net(nn.Module):
    """Shared head: subclasses define ``embed`` and a ``classifier`` Linear(feature_dim, num_classes)."""

    feature_dim: int
    num_classes: int
    classifier: nn.Linear

    def _set_io(self, channels, num_classes, image_size) -> tuple[int, int]:
        _positive_int("channels", channels)
        self.num_classes = _positive_int("num_classes", num_classes)
        return _image_size(image_size)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = self.embed(x)
        logits = self.classifier(features)
        return (logits, features) if return_features else logits
