"""Decoding lists of image files (Pillow) into one uint8 array: shared by the readers whose
file lists are known before decoding (TinyImageNet, the ImageNet subsets, torchvision
ImageFolder objects)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np


def read_images(files: list[Path], mode: str, transform: Callable | None = None) -> np.ndarray:
    """(N, H, W) for mode "L", (N, H, W, 3) for "RGB", uint8: each file converted to ``mode``,
    then ``transform(PIL image)`` if given; every result must have one size."""
    from PIL import Image, UnidentifiedImageError

    out, first = None, None
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert(mode)
                arr = np.asarray(transform(im) if transform else im)
        except UnidentifiedImageError:
            raise ValueError(f"{f}: not a readable image") from None
        except OSError as exc:  # a truncated or corrupt file
            raise ValueError(f"{f}: unreadable image ({exc})") from None
        if out is None:
            # one allocation: a list of arrays would double the peak memory of large sets
            out, first = np.empty((len(files), *arr.shape), np.uint8), f
        elif arr.shape != out.shape[1:]:
            raise ValueError(f"{f}: image size {arr.shape[1]}x{arr.shape[0]} (WxH) differs from {first}'s "
                             f"{out.shape[2]}x{out.shape[1]}; all images must have one size")
        out[i] = arr
    if out is None:
        raise ValueError("images: no image files to read")
    return out
