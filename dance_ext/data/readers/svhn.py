"""SVHN cropped digits: {train,test}_32x32.mat (needs scipy)."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ..classdata import ClassData
from ..convert import _from_arrays
from ..registry import DATASET_STATS, FolderLoader, register, register_folder
from .digits import _DIGIT_CLASSES


def _svhn_file(root: Path | None, split: str) -> Path:
    fname = f"{split}_32x32.mat"
    if root is None:
        raise ValueError(f"root: svhn has no default location; pass root= the folder holding {fname}")
    for p in (root / fname, root / "svhn" / fname):
        if p.is_file():
            return p
    raise FileNotFoundError(f"svhn: expected {fname} (the cropped-digits .mat) in {root} or "
                            f"{root / 'svhn'}")


def _load_svhn(split: str, root: Path | None) -> ClassData:
    path = _svhn_file(root, split)
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ImportError("svhn: reading .mat files needs scipy (pip install scipy)") from None
    mat = loadmat(path)
    x, y = mat["X"], mat["y"].reshape(-1)
    if x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != len(y):
        raise ValueError(f"{path}: expected X (32, 32, 3, N) and y (N, 1), got {x.shape} and "
                         f"{mat['y'].shape}")
    return _from_arrays(x.transpose(3, 2, 0, 1), y.astype(np.int64) % 10, name="svhn",
                        num_classes=10, stats=DATASET_STATS["svhn"], classes=_DIGIT_CLASSES)


def _read_folder(path: Path) -> FolderLoader | None:
    """train_32x32.mat in the folder itself or in svhn/."""
    if any((d / "train_32x32.mat").is_file() for d in (path, path / "svhn")):
        return partial(_load_svhn, root=path)
    return None


register("svhn", _load_svhn, stats=((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)))
register_folder(_read_folder)
