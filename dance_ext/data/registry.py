"""Dataset names and folder formats. Each reader registers its datasets (name, aliases,
statistics) and its folder detector here; ``load_dataset`` and ``as_class_data`` look them up."""
from __future__ import annotations

import difflib
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import foreign
from .classdata import ClassData
from .convert import _from_arrays, _from_dataset

SPLITS = ("train", "test")

_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

# (mean, std) per channel, by canonical dataset name (docs/ALGORITHMS.md §1.1). Readers add their
# datasets' entries; ImageNet's is listed here for the readers of its subsets.
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {"imagenet": _IMAGENET_STATS}

Loader = Callable[[str, "Path | None"], ClassData]  # (split, root) -> data
FolderLoader = Callable[[str], ClassData]  # split -> data
FolderReader = Callable[[Path], "FolderLoader | None"]  # a loader when the folder is in its format

_LOADERS: dict[str, Loader] = {}
# Keys are lower-case with '-' and '_' removed.
_ALIASES: dict[str, str] = {}
_FOLDER_READERS: list[FolderReader] = []
_FALLBACK_READERS: list[FolderReader] = []


def register(name: str, loader: Loader, *, stats, aliases: tuple[str, ...] = ()) -> None:
    """Make ``load_dataset(name)`` call ``loader(split, root)``; ``aliases`` resolve to ``name``
    (case-insensitive, '-' and '_' ignored); ``stats`` is its (mean, std) per channel."""
    for n in (name, *aliases):
        if _key(n) in _ALIASES:
            raise ValueError(f"register: {n!r} already names dataset {_ALIASES[_key(n)]!r}")
    _LOADERS[name] = loader
    DATASET_STATS[name] = stats
    _ALIASES.update(dict.fromkeys([_key(n) for n in (name, *aliases)], name))


def register_folder(reader: FolderReader, *, fallback: bool = False) -> None:
    """Ask ``reader(path)`` about folders passed to ``as_class_data``, in registration order.
    A fallback (ImageFolder trees, which any folder of folders resembles) is asked last."""
    (_FALLBACK_READERS if fallback else _FOLDER_READERS).append(reader)


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None,
                 device=None) -> ClassData:
    """Load a built-in dataset by name (see ``known_datasets()``) as ClassData."""
    _check_split(split)
    if not isinstance(name, str):
        raise TypeError(f"name: expected a dataset name (str), got {type(name).__name__}")
    canonical = _canonical(name)
    if canonical is None:
        close = difflib.get_close_matches(_key(name), list(_ALIASES), n=1, cutoff=0.8)
        hint = f" (did you mean {_ALIASES[close[0]]!r}?)" if close else ""
        raise ValueError(f"name: unknown dataset {name!r}{hint}; known: {_known_list()} "
                         "(or pass a folder / tensors / a Dataset to as_class_data)")
    data = _LOADERS[canonical](split, None if root is None else Path(root))
    return data if device is None else data.to(device)


def as_class_data(data, split: str = "train", root: str | os.PathLike | None = None,
                  device=None, *, name: str | None = None, mean=None, std=None) -> ClassData:
    """Turn a ClassData, dataset name, folder path, (images, labels) pair, torch Dataset,
    torchvision dataset object or Hugging Face dataset into ClassData. ``split`` and ``root``
    apply to names and folders (and to a Hugging Face DatasetDict).

    ``name``: what the data is. A built-in name given with a folder reads the folder in that
    dataset's format (``as_class_data("/data/imagenet", name="imagewoof")`` is
    ``load_dataset("imagewoof", root="/data/imagenet")``); for other data it names the set
    and, when built in, brings its statistics and presets. ``mean``/``std`` (both or
    neither, one value per channel) override the statistics."""
    _check_split(split)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name: expected a dataset name (str), got {type(name).__name__}")
    if (mean is None) != (std is None):
        raise ValueError("mean/std: pass both (one value per channel) or neither")
    known = _canonical(name) if name is not None else None
    if known is not None and isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        out = load_dataset(known, split, data)
    else:
        out = _convert(data, split, root)
    if name is not None or mean is not None:
        stats = (mean, std) if mean is not None else DATASET_STATS[known] if known else (out.mean, out.std)
        out = replace(out, name=known or name or out.name, mean=stats[0], std=stats[1])
    return out if device is None else out.to(device)


def _convert(data, split: str, root) -> ClassData:
    if isinstance(data, ClassData):
        return data
    if isinstance(data, str) and _canonical(data) is not None:
        return load_dataset(data, split, root)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.is_dir():
            raise ValueError(f"data: {str(data)!r} is neither a known dataset ({_known_list()}) "
                             "nor an existing folder")
        return _load_folder(path, split)
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise TypeError(f"data: expected an (images, labels) pair, got a {type(data).__name__} "
                            f"of length {len(data)}")
        return _from_arrays(data[0], data[1], name="tensors")
    if isinstance(data, (torch.Tensor, np.ndarray)):
        raise TypeError(f"data: got a lone {type(data).__name__}; pass (images, labels)")
    recognised = foreign.recognise(data, split)
    if recognised is not None:
        return recognised
    if isinstance(data, torch.utils.data.Dataset) or (
            hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, dict)):
        return _from_dataset(data)
    raise TypeError("data: expected ClassData, a dataset name, a folder path, an (images, labels) pair, a "
                    f"torch Dataset or a Hugging Face dataset, got {type(data).__name__}")


def known_datasets() -> dict[str, list[str]]:
    """Canonical built-in names and their aliases."""
    out: dict[str, list[str]] = {name: [] for name in _LOADERS}
    for alias, name in _ALIASES.items():
        if alias != name.replace("-", ""):
            out[name].append(alias)
    return out


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")


def _canonical(name: str) -> str | None:
    return _ALIASES.get(name.lower().replace("-", "").replace("_", ""))


def _known_list() -> str:
    parts = []
    for name, aliases in known_datasets().items():
        parts.append(f"{name} (alias {', '.join(aliases)})" if aliases else name)
    return ", ".join(parts)


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _load_folder(path: Path, split: str) -> ClassData:
    # The fallback reader answers for any folder, so one loader is always found.
    readers = (*_FOLDER_READERS, *_FALLBACK_READERS)
    load = next(filter(None, (reader(path) for reader in readers)))
    return load(split)
