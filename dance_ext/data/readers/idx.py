"""IDX files: MNIST, Fashion-MNIST (also the Debian package's folder and torchvision's
<root>/MNIST/raw/ layout) and IDX folders of unknown origin."""
from __future__ import annotations

import gzip
import math
import os
import struct
from functools import partial
from pathlib import Path

import numpy as np

from ..classdata import ClassData
from ..convert import _from_arrays
from ..registry import DATASET_STATS, SPLITS, FolderLoader, register, register_folder
from .digits import _DIGIT_CLASSES

_FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                    "Sneaker", "Bag", "Ankle boot"]

FASHION_MNIST_DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"

# IDX (MNIST family): 4-byte magic 00 00 <type> <ndim>, ndim big-endian uint32 dims, data.
_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_IDX_SUBDIRS = {"mnist": ("MNIST",), "fashion-mnist": ("FashionMNIST",)}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (gzip-compressed or not) into a numpy array."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, gzip.BadGzipFile) as exc:
            raise ValueError(f"{path}: truncated or corrupt gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise ValueError(f"{path}: not an IDX file (magic bytes {raw[:4].hex(' ')}; expected "
                         "00 00 <type 08..0e> <ndim>)")
    ndim, dtype = raw[3], _IDX_TYPES[raw[2]]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX file: header of {header} bytes, found {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        what = "truncated IDX file" if found < expected else "IDX file with trailing bytes"
        raise ValueError(f"{path}: {what}: dims {dims} need {expected} data bytes, found {found}")
    return np.frombuffer(raw, dtype, math.prod(dims), header).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_candidates(directory: Path, split: str, kind: str) -> list[Path]:
    p = _IDX_PREFIX[split]
    rank = 3 if kind == "images" else 1
    names = (f"{p}-{kind}-idx{rank}-ubyte", f"{p}-{kind}.idx{rank}-ubyte")
    return [directory / (n + gz) for n in names for gz in ("", ".gz")]


def _idx_dirs(root: Path, subdirs) -> list[Path]:
    return [root, root / "raw"] + [root / s / "raw" for s in subdirs]


def _find_idx(root: Path, split: str, subdirs) -> tuple[Path, Path] | None:
    for d in _idx_dirs(root, subdirs):
        found = [next((f for f in _idx_candidates(d, split, kind) if f.is_file()), None)
                 for kind in ("images", "labels")]
        if all(found):
            return found[0], found[1]
    return None


def _read_idx_split(root: Path, split: str, subdirs, name: str) -> tuple[np.ndarray, np.ndarray]:
    files = _find_idx(root, split, subdirs)
    if files is None:
        p = _IDX_PREFIX[split]
        looked = ", ".join(str(d) for d in _idx_dirs(root, subdirs))
        hint = ""
        if name == "fashion-mnist":
            hint = (f"; install the Debian package (`apt-get install dataset-fashion-mnist`, files in "
                    f"{FASHION_MNIST_DEBIAN_ROOT}) or pass root= a folder in torchvision's layout "
                    "(<root>/FashionMNIST/raw/)")
        elif name == "mnist":
            hint = "; torchvision's layout <root>/MNIST/raw/ is accepted"
        raise FileNotFoundError(
            f"{name}: no IDX files for split {split!r} under root {str(root)!r}: expected "
            f"{p}-images-idx3-ubyte[.gz] and {p}-labels-idx1-ubyte[.gz] in one of: {looked}{hint}")
    images, labels = read_idx(files[0]), read_idx(files[1])
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(f"{name}: expected images (N, H, W) in {files[0]} and labels (N,) in "
                         f"{files[1]}, got shapes {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{name}: {len(labels)} labels in {files[1]} for {len(images)} images in "
                         f"{files[0]} (length mismatch)")
    return images, labels


def _load_mnist_family(name: str, split: str, root: Path | None) -> ClassData:
    if root is None:
        if name != "fashion-mnist":
            raise ValueError(f"root: {name} has no default location; pass root= the folder holding "
                             "train-images-idx3-ubyte[.gz] (or torchvision's <root>/MNIST/raw/)")
        root = Path(FASHION_MNIST_DEBIAN_ROOT)
    images, labels = _read_idx_split(root, split, _IDX_SUBDIRS[name], name)
    classes = _FASHION_CLASSES if name == "fashion-mnist" else _DIGIT_CLASSES
    return _from_arrays(images, labels, name=name, num_classes=10, stats=DATASET_STATS[name],
                        classes=classes)


def _load_idx_folder(root: Path, split: str, name: str) -> ClassData:
    """An IDX folder of unknown origin: classes and stats come from its train split."""
    train_x, train_y = _read_idx_split(root, "train", (), name)
    train = _from_arrays(train_x, train_y, name=name)
    if split == "train":
        return train
    x, y = _read_idx_split(root, "test", (), name)
    return _from_arrays(x, y, name=name, num_classes=train.num_classes,
                        stats=(train.mean, train.std))


def _read_folder(path: Path) -> FolderLoader | None:
    """torchvision's <root>/FashionMNIST|MNIST/raw/ layout, else IDX files at the top or in raw/:
    MNIST or Fashion-MNIST when the path names it, an IDX set of unknown origin otherwise."""
    for sub, name in (("FashionMNIST", "fashion-mnist"), ("MNIST", "mnist")):
        if any(_find_idx(path / sub / "raw", s, ()) for s in SPLITS):
            return partial(_load_mnist_family, name, root=path)
    if any(_find_idx(path, s, ()) for s in SPLITS):
        words = {part.lower().replace("-", "").replace("_", "") for part in path.resolve().parts}
        if words & {"fashionmnist", "fashion"}:
            return partial(_load_mnist_family, "fashion-mnist", root=path)
        if "mnist" in words:
            return partial(_load_mnist_family, "mnist", root=path)
        return partial(_load_idx_folder, path, name=path.name)
    return None


register("mnist", partial(_load_mnist_family, "mnist"), stats=((0.1307,), (0.3081,)))
register("fashion-mnist", partial(_load_mnist_family, "fashion-mnist"), stats=((0.2861,), (0.3530,)),
         aliases=("fashion",))
register_folder(_read_folder)
