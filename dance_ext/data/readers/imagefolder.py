"""ImageFolder trees: one sub-folder of images per class, optionally under train/ and
test/ (or val/). Needs Pillow. The folder format of last resort."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ..classdata import ClassData
from ..convert import _from_arrays, _pil_mode
from ..pixels import pil_pixels, stack_pixels
from ..registry import register_folder

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_folder_split(root: Path, split: str) -> tuple[Path, Path]:
    """(train folder, folder of the requested split)."""
    train = root / "train"
    if train.is_dir() and _class_dirs(train):
        if split == "train":
            return train, train
        for name in ("test", "val"):
            if (root / name).is_dir():
                return train, root / name
        raise FileNotFoundError(f"split: 'test' requested but {root} has train/ and no test/ or val/")
    if split == "test":
        raise FileNotFoundError(f"split: 'test' requested but {root} has no train/ + test/ (or val/) "
                                "sub-folders; the folder as a whole is the train split")
    return root, root


def _read_image_tree(folder: Path, classes: list[str], mode: str | None = None,
                     size: tuple[int, int] | None = None, first: Path | None = None):
    """(images (N, C, H, W) exact pixels (data/pixels.py), labels, mode, size, first file); mode
    ("L" or "RGB": the channels), size and first given for a test split make it match its train split."""
    from PIL import Image, UnidentifiedImageError

    files, labels = [], []
    for c, cname in enumerate(classes):
        cdir = folder / cname
        if not cdir.is_dir():
            continue
        found = sorted(p for p in cdir.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
        if not found:
            raise FileNotFoundError(f"{cdir}: class folder without images "
                                    f"(expected files ending in {sorted(_IMAGE_SUFFIXES)})")
        files += found
        labels += [c] * len(found)
    modes = []
    for f in files:  # headers only: the common mode and the size check before decoding
        try:
            with Image.open(f) as im:
                modes.append(im.mode)
                if size is None:
                    size, first = im.size, f
                elif im.size != size:
                    raise ValueError(f"{f}: image size {im.size[0]}x{im.size[1]} (WxH) differs from "
                                     f"{first}'s {size[0]}x{size[1]}; all images must have one size")
        except UnidentifiedImageError:
            raise ValueError(f"{f}: not a readable image") from None
    mode = mode or _pil_mode(modes)
    arrays = []
    for f in files:
        with Image.open(f) as im:
            a = pil_pixels(im, str(f))
        if a.ndim == 3 and mode == "L":
            raise ValueError(f"{f}: a colour image, but the train split's images are all grayscale")
        arrays.append(np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 and mode == "RGB" else a)
    return stack_pixels(arrays), np.asarray(labels, dtype=np.int64), mode, size, first


def _load_image_folder(root: Path, split: str) -> ClassData:
    train_dir, split_dir = _image_folder_split(root, split)
    classes = _class_dirs(train_dir)
    if not classes:
        raise FileNotFoundError(
            f"data: cannot tell the format of {root}: expected IDX files (train-images-idx3-ubyte"
            "[.gz], also under raw/ or MNIST/raw/ or FashionMNIST/raw/), CIFAR python batches, "
            "train_32x32.mat, or an ImageFolder tree (one sub-folder of images per class, "
            "optionally under train/ and test/)")
    extra = sorted(set(_class_dirs(split_dir)) - set(classes))
    if extra:
        raise ValueError(f"{split_dir}: class folders {extra} are not in {train_dir}'s classes")
    name = root.name or "imagefolder"
    x, y, mode, size, first = _read_image_tree(train_dir, classes)
    train = _from_arrays(x, y, name=name, num_classes=len(classes), classes=classes)
    if split_dir == train_dir:
        return train
    x, y, *_ = _read_image_tree(split_dir, classes, mode, size, first)
    return _from_arrays(x, y, name=name, num_classes=len(classes), classes=classes,
                        stats=(train.mean, train.std))


register_folder(lambda path: partial(_load_image_folder, path), fallback=True)
