"""Argument checks and the classifier head shared by every network."""
from __future__ import annotations

import torch
from torch import nn

from ..checks import hw, positive_int


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
        positive_int("channels", channels)
        self.num_classes = positive_int("num_classes", num_classes)
        return hw(image_size)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = self.embed(x)
        logits = self.classifier(features)
        return (logits, features) if return_features else logits
