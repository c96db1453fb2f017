"""What every format shares: the one place where a set is decoded (multi-formation mosaics
→ images, labels repeated f² times; ``CondenseResult.decoded``) and moved between [0, 1]
pixels and normalised values, the official codes' dataset names, and the meta of an
imported set."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data.registry import DATASET_STATS, _canonical
from . import FORMATS

# DM's spellings (utils.get_dataset); DANCE spells them as we do but for Fashion-MNIST
DM_NAMES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "svhn": "SVHN", "cifar10": "CIFAR10",
            "cifar100": "CIFAR100", "tinyimagenet": "TinyImageNet"}
DANCE_NAMES = {"fashion-mnist": "fashion"}
# DANCE normalises CIFAR-100 with CIFAR-10's statistics (ALGORITHMS.md §3.2)
DANCE_STATS = {"cifar100": DATASET_STATS["cifar10"]}


def check_format(format, allowed=FORMATS) -> str:
    if format not in allowed:
        raise ValueError(f"format: expected one of {allowed}, got {format!r}")
    return format


def decoded_pixels(result) -> tuple[torch.Tensor, torch.Tensor]:
    """The training set a result stands for, on the CPU: float32 (N, C, H, W) pixels and
    int64 labels, class-major."""
    images, labels = result.decoded()
    return images.detach().cpu().float().contiguous(), labels.cpu().long()


def _stat_column(values, channels: int) -> torch.Tensor:
    column = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if column.numel() not in (1, channels):
        raise ValueError(f"mean/std: {column.numel()} values for images of {channels} channels; expected one per "
                         "channel (the statistics of another dataset?)")
    return column.expand(channels).reshape(1, channels, 1, 1)


def normalise(pixels: torch.Tensor, mean, std) -> torch.Tensor:
    """(x − mean) / std per channel: how DM keeps its synthetic images (§1.1–1.2)."""
    c = pixels.shape[1]
    return (pixels - _stat_column(mean, c)) / _stat_column(std, c)


def denormalise(images: torch.Tensor, mean, std) -> torch.Tensor:
    c = images.shape[1]
    return images * _stat_column(std, c) + _stat_column(mean, c)


def stats_of(meta: dict, what: str) -> tuple[list, list]:
    mean, std = meta.get("mean"), meta.get("std")
    if mean is None or std is None:
        raise ValueError(f"result: its meta has no mean/std, which {what} needs; set meta['mean'] and "
                         "meta['std'] (one value per channel)")
    return list(mean), list(std)


def official_name(dataset, table: dict) -> str:
    return table.get(dataset, dataset) if isinstance(dataset, str) and dataset else "unknown"


def known_name(name) -> str | None:
    """Our canonical name for a dataset named by us or the official codes (DM's 'CIFAR10',
    DANCE's 'fashion'), or None."""
    return _canonical(name) if isinstance(name, str) and name else None


def json_object(text: str, where: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{where} is unreadable JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def read_json(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"path: {path} is unreadable ({exc})") from exc
    return json_object(text, f"path: {path}")


def shared_meta(result, format: str) -> dict:
    """What an export records beside the images for the importer (and for people): the
    dataset, classes, statistics and how the stored images relate to them."""
    meta = result.meta
    keys = ("dataset", "method", "num_classes", "classes", "mean", "std", "ipc", "iterations", "seed")
    out = {k: meta[k] for k in keys if meta.get(k) is not None}
    out.update(format=format, source_factor=result.factor)
    return out

