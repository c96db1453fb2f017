"""sklearn's 8x8 digits: offline, no root needed. Test split: every 5th image."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classdata import ClassData
from ..convert import _from_arrays
from ..registry import DATASET_STATS, register

_DIGIT_CLASSES = [str(i) for i in range(10)]


def _load_digits(split: str, root: Path | None) -> ClassData:
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = (np.arange(len(d.target)) % 5 == 0) == (split == "test")  # test: every 5th image
    images = (d.images[keep] / 16.0).astype(np.float32)
    return _from_arrays(images, d.target[keep], name="digits", num_classes=10,
                        stats=DATASET_STATS["digits"], classes=_DIGIT_CLASSES)


# Computed here from the train split (1437 images, values/16): 0.30521 / 0.37632 (population
# std over all pixels).
register("digits", _load_digits, stats=((0.3052,), (0.3763,)))
