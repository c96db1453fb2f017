"""The synthetic set's storage: initialisation and multi-formation decoding
(docs/ALGORITHMS.md §1.2, §3.4). Everything is batched over classes: storage is class-major
(C·ipc, ch, H, W)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .data import ClassData
from .utils import random_rows

INITS = ("real", "first", "mix", "noise")


def tile_sizes(length: int, factor: int) -> list[int]:
    """Mix-init tile sides: length // factor, plus one for the first length % factor tiles."""
    base, extra = divmod(length, factor)
    return [base + (1 if i < extra else 0) for i in range(factor)]


def mix_tiles(images: torch.Tensor, ipc: int, factor: int) -> torch.Tensor:
    """DANCE/IDC 'mix' init of one class: image m is an f×f mosaic whose tile (i, j) holds
    real image (i·f + j)·ipc + m, downsampled with nearest (F.interpolate's default)."""
    n, ch, height, width = images.shape
    assert n == ipc * factor * factor
    out = images.new_empty(ipc, ch, height, width)
    rows, cols = tile_sizes(height, factor), tile_sizes(width, factor)
    top = 0
    for i, th in enumerate(rows):
        left = 0
        for j, tw in enumerate(cols):
            k = i * factor + j
            tile = F.interpolate(images[k * ipc:(k + 1) * ipc], size=(th, tw), mode="nearest")
            out[:, :, top:top + th, left:left + tw] = tile
            left += tw
        top += th
    return out


def initial_images(data: ClassData, ipc: int, init: str, factor: int, generator: torch.Generator,
                   pixel_space: bool) -> torch.Tensor:
    """The starting synthetic set, class-major, (C·ipc, ch, H, W) on data's device.

    ``pixel_space`` True stores [0, 1] images (DANCE), False normalised ones (DM)."""
    num_classes, dev = data.num_classes, data.images.device
    shape = (num_classes * ipc, data.channels, *data.image_size)
    if init == "noise":
        noise = torch.randn(shape, generator=generator, device=generator.device).to(dev)
        # DANCE fills [0,1] storage with clamp(N(0,1)/4 + 1/2); DM keeps N(0,1) in normalised space
        return (noise / 4 + 0.5).clamp_(0, 1) if pixel_space else noise
    if init == "real":
        table, _ = data.class_index_table()
        images = data.images[random_rows(table.to(dev), ipc, generator).reshape(-1)]
    elif init == "first":
        images = data.images[data.first_per_class(ipc).reshape(-1)]
    elif init == "mix":
        first = data.first_per_class(ipc * factor * factor)
        images = torch.cat([mix_tiles(data.images[first[c]], ipc, factor) for c in range(num_classes)])
    else:
        raise ValueError(f"init: expected one of {INITS}, got {init!r}")
    return images.clone() if pixel_space else data.normalize(images)


def decode(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Multi-formation decode ('single'): every stored image → f² images (crops of side
    ceil(H/f), after padding right/bottom with 0.5, upsampled bilinearly with
    align_corners=False). Class-major in, class-major out: (C·ipc) → (C·ipc·f²), each
    class's decoded images contiguous. Differentiable."""
    if factor == 1:
        return images
    n, ch, height, width = images.shape
    crop_h, crop_w = math.ceil(height / factor), math.ceil(width / factor)
    pad_h, pad_w = crop_h * factor - height, crop_w * factor - width
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h), value=0.5)
    crops = images.reshape(n, ch, factor, crop_h, factor, crop_w).permute(0, 2, 4, 1, 3, 5)
    crops = crops.reshape(n * factor * factor, ch, crop_h, crop_w)
    return F.interpolate(crops, size=(height, width), mode="bilinear", align_corners=False)
