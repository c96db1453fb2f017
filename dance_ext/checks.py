"""Argument checks shared by every layer: one wording for "expected X, got Y"."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def describe(value) -> str:
    """What ``value`` is, for an error message: a tensor's or array's shape and dtype, else its type."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"shape {tuple(value.shape)}, dtype {value.dtype}"
    return type(value).__name__


def is_int(value) -> bool:
    """An int that is not a bool (True is an int to Python, never a count here)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(name: str, value) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def hw(size, name: str = "image_size") -> tuple[int, int]:
    """``size`` (an int or an (H, W) pair of positive ints) as (H, W)."""
    if is_int(size):
        size = (size, size)
    if not isinstance(size, Sequence) or len(size) != 2 or not all(is_int(s) and s > 0 for s in size):
        raise ValueError(f"{name}: expected a positive int or a pair (H, W) of positive ints, got {size!r}")
    return int(size[0]), int(size[1])
