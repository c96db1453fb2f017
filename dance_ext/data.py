"""Datasets -> class-indexed tensors.

Everything becomes a :class:`ClassData`: float32 images in [0, 1] pixel space (N, C, H, W),
int64 labels, the dataset's normalisation statistics and per-class index tables. Images
stay in pixel space (DANCE's convention, ALGORITHMS.md §3.2); ``normalize`` applies the
statistics where a network sees them.

Sources: the built-in names of ``load_dataset`` (sklearn digits offline; MNIST /
Fashion-MNIST IDX files, CIFAR-10/100 python pickles, SVHN .mat from a local ``root``),
a folder (its format is detected, ImageFolder trees included), (images, labels) tensors or
arrays, and any ``torch.utils.data.Dataset`` yielding (image, label). No torchvision needed.
"""
from __future__ import annotations

import gzip
import math
import os
import pickle
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

SPLITS = ("train", "test")

_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))

# (mean, std) per channel, by canonical dataset name (ALGORITHMS.md §1.1).
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # digits: computed here from the train split (1437 images, values/16): 0.30521 / 0.37632
    # (population std over all pixels).
    "digits": ((0.3052,), (0.3763,)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2861,), (0.3530,)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "cifar10": _CIFAR10_STATS,
    # DM's CIFAR-100 statistics; DANCE's code uses the CIFAR-10 ones for CIFAR-100 (§3.2).
    "cifar100": ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
    "tinyimagenet": _IMAGENET_STATS,
    "imagenet": _IMAGENET_STATS,
}

_DIGIT_CLASSES = [str(i) for i in range(10)]
_FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                    "Sneaker", "Bag", "Ankle boot"]
_CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                    "ship", "truck"]

FASHION_MNIST_DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"

# Pixel floats may overshoot [0, 1] slightly (e.g. after float interpolation); such values
# are clamped. Beyond this margin the data is almost certainly normalised or 0..255.
_RANGE_TOLERANCE = 0.05


@dataclass(eq=False, repr=False)
class ClassData:
    """A labelled image set in [0, 1] pixel space with its normalisation statistics."""
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    classes: list[str] | None = None
    _stats_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        x, y = self.images, self.labels
        if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.dim() != 4:
            raise TypeError("images: expected a float32 tensor (N, C, H, W) in [0, 1]; got "
                            f"{_describe_value(x)} (as_class_data converts arrays and uint8)")
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.dim() != 1:
            raise TypeError(f"labels: expected an int64 tensor (N,), got {_describe_value(y)}")
        _require_data(x, "images")
        _require_data(y, "labels")
        if x.shape[0] == 0:
            raise ValueError("images: the dataset is empty (N = 0)")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"labels: {y.shape[0]} labels for {x.shape[0]} images")
        if y.device != x.device:
            raise ValueError(f"labels: on {y.device}, images on {x.device}; expected one device")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) \
                or self.num_classes < 1:
            raise ValueError(f"num_classes: expected a positive int, got {self.num_classes!r}")
        _check_label_range(y, self.num_classes)
        c = x.shape[1]
        self.mean = _stat_tuple(self.mean, c, "mean")
        self.std = _stat_tuple(self.std, c, "std")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std: expected positive values, got {self.std}")
        if self.classes is not None:
            self.classes = [str(n) for n in self.classes]
            if len(self.classes) != self.num_classes:
                raise ValueError(f"classes: {len(self.classes)} names for "
                                 f"num_classes={self.num_classes}")

    # -- shape facts
    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.images.shape[2], self.images.shape[3])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return f"ClassData({self.describe()}, device={self.device})"

    def to(self, device) -> ClassData:
        from .utils import resolve_device  # noqa: lazy until the data package split lands

        device = resolve_device(device)
        if device == self.device:
            return self
        return replace(self, images=self.images.to(device), labels=self.labels.to(device))

    # -- normalisation
    def _stat_tensors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Cached per (device, dtype) so the condensation loop does no host-to-device copy.
        key = (x.device, x.dtype)
        stats = self._stats_cache.get(key)
        if stats is None:
            stats = tuple(torch.tensor(v, dtype=x.dtype, device=x.device).view(-1, 1, 1)
                          for v in (self.mean, self.std))
            self._stats_cache[key] = stats
        return stats

    def _check_pixels(self, x, what: str):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x: {what} expects a floating tensor, got {_describe_value(x)}")
        if x.dim() < 3 or x.shape[-3] != self.channels:
            raise ValueError(f"x: {what} expects (..., {self.channels}, H, W), got shape "
                             f"{tuple(x.shape)}")

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std per channel; differentiable, on x's device and dtype."""
        self._check_pixels(x, "normalize")
        mean, std = self._stat_tensors(x)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of ``normalize``: x * std + mean per channel."""
        self._check_pixels(x, "denormalize")
        mean, std = self._stat_tensors(x)
        return x * std + mean

    # -- class tables
    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=self.num_classes)

    def class_index_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(table (C, max_count) of each class's image indices in dataset order, -1 padded;
        counts (C,)). Sampling a class is then one indexing op on the device."""
        counts = self.class_counts()
        order = torch.argsort(self.labels, stable=True)
        sorted_labels = self.labels[order]
        starts = torch.cumsum(counts, 0) - counts
        position = torch.arange(len(order), device=order.device) - starts[sorted_labels]
        table = torch.full((self.num_classes, int(counts.max())), -1, dtype=torch.int64,
                           device=order.device)
        table[sorted_labels, position] = order
        return table, counts

    def first_per_class(self, n: int) -> torch.Tensor:
        """(C, n) indices of the first n images of each class in dataset order."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n: expected a positive int, got {n!r}")
        table, counts = self.class_index_table()
        short = (counts < n).nonzero().flatten().tolist()
        if short:
            c = short[0]
            raise ValueError(f"n: {n} images per class requested but class {self._class_name(c)} "
                             f"has only {int(counts[c])} (classes short of n: {short})")
        return table[:, :n].contiguous()

    def _class_name(self, c: int) -> str:
        return f"{c} ({self.classes[c]!r})" if self.classes else str(c)

    def describe(self) -> str:
        counts = self.class_counts()
        c, h, w = self.images.shape[1:]
        return (f"{self.name}: {len(self)} images, {c}x{h}x{w}, {self.num_classes} classes, "
                f"{int(counts.min())}-{int(counts.max())} per class")


# ---------------------------------------------------------------------------------------
# Public entry points

def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None,
                 device=None) -> ClassData:
    """Load a built-in dataset by name (see ``known_datasets()``) as ClassData."""
    _check_split(split)
    if not isinstance(name, str):
        raise TypeError(f"name: expected a dataset name (str), got {type(name).__name__}")
    canonical = _canonical(name)
    if canonical is None:
        raise ValueError(f"name: unknown dataset {name!r}; known: {_known_list()} "
                         "(or pass a folder / tensors / a Dataset to as_class_data)")
    data = _LOADERS[canonical](split, None if root is None else Path(root))
    return data if device is None else data.to(device)


def as_class_data(data, split: str = "train", root: str | os.PathLike | None = None,
                  device=None) -> ClassData:
    """Turn a ClassData, dataset name, folder path, (images, labels) pair or torch Dataset
    into ClassData. ``split`` and ``root`` apply to names and folders."""
    _check_split(split)
    if isinstance(data, ClassData):
        out = data
    elif isinstance(data, str) and _canonical(data) is not None:
        out = load_dataset(data, split, root)
    elif isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.is_dir():
            raise ValueError(f"data: {str(data)!r} is neither a known dataset ({_known_list()}) "
                             "nor an existing folder")
        out = _load_folder(path, split)
    elif isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise TypeError(f"data: expected an (images, labels) pair, got a {type(data).__name__} "
                            f"of length {len(data)}")
        out = _from_arrays(data[0], data[1], name="tensors")
    elif isinstance(data, (torch.Tensor, np.ndarray)):
        raise TypeError(f"data: got a lone {type(data).__name__}; pass (images, labels)")
    elif isinstance(data, torch.utils.data.Dataset) or (
            hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, dict)):
        out = _from_dataset(data)
    else:
        raise TypeError("data: expected ClassData, a dataset name, a folder path, an (images, "
                        f"labels) pair or a torch Dataset, got {type(data).__name__}")
    return out if device is None else out.to(device)


def known_datasets() -> dict[str, list[str]]:
    """Canonical built-in names and their aliases."""
    out: dict[str, list[str]] = {name: [] for name in _LOADERS}
    for alias, name in _ALIASES.items():
        if alias != name.replace("-", ""):
            out[name].append(alias)
    return out


# ---------------------------------------------------------------------------------------
# Conversion and validation

def _describe_value(v) -> str:
    if isinstance(v, (torch.Tensor, np.ndarray)):
        return f"{type(v).__name__} of dtype {v.dtype} and shape {tuple(v.shape)}"
    return type(v).__name__


def _require_data(t: torch.Tensor, arg: str) -> None:
    if t.device.type == "meta":
        raise ValueError(f"{arg}: a meta tensor has a shape but no values; expected a tensor on the cpu or "
                         "a cuda device")


def check_finite(x: torch.Tensor, arg: str) -> None:
    """Raise ValueError naming ``arg`` when ``x`` has no values (meta device) or a NaN / inf."""
    _require_data(x, arg)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{arg}: contains NaN or inf")


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")


def _stat_tuple(values, channels: int, arg: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except TypeError:
        raise TypeError(f"{arg}: expected a sequence of {channels} floats, got {values!r}") from None
    if len(out) != channels or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{arg}: expected {channels} finite values (one per channel), got {out}")
    return out


def _check_label_range(y: torch.Tensor, num_classes: int | None):
    """Labels must be in [0, num_classes); with num_classes None only negatives are errors."""
    lo, hi = (int(v) for v in torch.aminmax(y))
    if lo < 0:
        i = int((y < 0).nonzero()[0])
        raise ValueError(f"labels: negative label {int(y[i])} at index {i}; expected class indices >= 0")
    if num_classes is not None and hi >= num_classes:
        i = int((y >= num_classes).nonzero()[0])
        raise ValueError(f"labels: label {int(y[i])} at index {i} is out of range for "
                         f"{num_classes} classes; expected 0..{num_classes - 1}")


def _as_tensor(v, arg: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        _require_data(v, arg)
        return v
    if isinstance(v, (list, tuple)):
        v = np.asarray(v)
    if not isinstance(v, np.ndarray):
        raise TypeError(f"{arg}: expected a torch tensor or numpy array, got {type(v).__name__}")
    if v.dtype.kind not in "biuf":
        raise TypeError(f"{arg}: expected a numeric array, got dtype {v.dtype}")
    if v.dtype.kind == "u" and v.dtype != np.uint8:
        v = v.astype(np.int64)  # torch's uint16/32/64 lack most ops
    if not v.flags.writeable:
        v = v.copy()  # torch.from_numpy warns on read-only buffers
    return torch.from_numpy(np.ascontiguousarray(v))


def _to_images(images, arg: str = "images") -> torch.Tensor:
    """Any numeric (N,H,W), (N,C,H,W) or (N,H,W,C) image batch -> float32 (N,C,H,W) in [0,1]."""
    x = _as_tensor(images, arg)
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{arg}: expected numeric pixels (uint8 0..255 or float 0..1), got dtype {x.dtype}")
    shape = tuple(x.shape)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    elif x.dim() == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.permute(0, 3, 1, 2)  # channels-last (N, H, W, C)
    elif x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"{arg}: expected 4-D (N, C, H, W) with C in {{1, 3}}, (N, H, W, C) or "
                         f"(N, H, W); got shape {shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{arg}: the dataset is empty (N = 0)")
    if x.is_floating_point():
        x = x.to(torch.float32)
        check_finite(x, arg)
        lo, hi = (float(v) for v in torch.aminmax(x))
        if lo < -_RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
            hint = ("they look like 0..255 pixel values: divide by 255 or pass uint8"
                    if lo >= -_RANGE_TOLERANCE and hi <= 255 else
                    "they look normalised already ((x - mean) / std): pass unnormalised pixels")
            raise ValueError(f"{arg}: float values span [{lo:.4g}, {hi:.4g}]; expected pixel space "
                             f"[0, 1]: {hint}")
        x = x.clamp(0.0, 1.0)
    else:
        if x.dtype != torch.uint8:
            lo, hi = (int(v) for v in torch.aminmax(x))
            if lo < 0 or hi > 255:
                raise ValueError(f"{arg}: integer values span [{lo}, {hi}]; expected 0..255 pixel "
                                 "values (or floats in [0, 1])")
        x = x.to(torch.float32).div_(255)
    return x.contiguous()


def _to_labels(labels, n: int, arg: str = "labels") -> torch.Tensor:
    y = _as_tensor(labels, arg)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{arg}: expected integer class labels, got dtype {y.dtype}")
    if y.dim() != 1:
        raise ValueError(f"{arg}: expected a 1-D (N,) tensor, got shape {tuple(y.shape)}")
    if y.shape[0] != n:
        raise ValueError(f"{arg}: {y.shape[0]} labels for {n} images (length mismatch)")
    return y.to(torch.int64)


def _data_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    std, mean = torch.std_mean(x, dim=(0, 2, 3), correction=0)
    # A constant channel has std 0: use 1 so normalize stays finite.
    return tuple(mean.tolist()), tuple(s if s > 0 else 1.0 for s in std.tolist())


def _from_arrays(images, labels, *, name: str, num_classes: int | None = None,
                 stats=None, classes=None) -> ClassData:
    """Validated ClassData from raw arrays; stats and num_classes come from the data if None."""
    x = _to_images(images)
    y = _to_labels(labels, x.shape[0]).to(x.device)
    if num_classes is None:
        _check_label_range(y, None)
        num_classes = _inferred_num_classes(y)
    mean, std = _data_stats(x) if stats is None else stats
    return ClassData(x, y, num_classes, mean, std, name, classes)


def _inferred_num_classes(y: torch.Tensor) -> int:
    """max + 1, when every class id 0..max occurs (a gap means 1-based or filtered labels)."""
    present = torch.unique(y)  # sorted; never a table sized by the (maybe huge) largest label
    num_classes = int(present[-1]) + 1
    if len(present) != num_classes:
        gaps = (present.diff() > 1).nonzero().flatten()
        first = 0 if int(present[0]) > 0 else int(present[gaps[0]]) + 1
        raise ValueError(f"labels: class ids must be 0..C-1 with every class present; ids in 0..{num_classes - 1} "
                         f"without an image: {num_classes - len(present)} (first: {first}). Pass a Dataset with "
                         "a .classes list to declare the classes explicitly")
    return num_classes


def _from_dataset(ds) -> ClassData:
    """Materialise a map-style or iterable Dataset of (image, label) items."""
    if isinstance(ds, torch.utils.data.IterableDataset):
        items = iter(ds)
    else:
        try:
            items = (ds[i] for i in range(len(ds)))
        except TypeError:
            raise TypeError(f"data: a map-style Dataset needs __len__; {type(ds).__name__} has "
                            "none (or make it an IterableDataset)") from None
    images, labels = [], []
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise TypeError(f"data[{i}]: expected an (image, label) pair, got {type(item).__name__}")
        img = _sample_tensor(item[0], i)
        if images and img.shape != images[0].shape:
            raise ValueError(f"data[{i}]: image of shape {tuple(img.shape)} differs from data[0]'s "
                             f"{tuple(images[0].shape)}; all images must have one size")
        images.append(img)
        labels.append(_sample_label(item[1], i))
    if not images:
        raise ValueError("data: the dataset is empty")
    classes = getattr(ds, "classes", None)
    ok = isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes) and classes
    return _from_arrays(torch.stack(images), torch.tensor(labels, dtype=torch.int64),
                        name=type(ds).__name__, num_classes=len(classes) if ok else None,
                        classes=list(classes) if ok else None)


def _sample_tensor(img, i: int) -> torch.Tensor:
    if isinstance(img, torch.Tensor):
        return img
    if isinstance(img, np.ndarray):
        return _as_tensor(img, f"data[{i}] image")
    from PIL import Image

    if isinstance(img, Image.Image):
        arr = np.asarray(img.convert(_pil_mode([img.mode])))
        return torch.from_numpy(arr.copy()).unsqueeze(0) if arr.ndim == 2 else \
            torch.from_numpy(arr.transpose(2, 0, 1).copy())
    raise TypeError(f"data[{i}]: expected the image as a tensor, numpy array or PIL image, "
                    f"got {type(img).__name__}")


def _sample_label(label, i: int) -> int:
    if isinstance(label, torch.Tensor) and label.numel() == 1 and not label.is_floating_point() \
            and label.dtype != torch.bool:
        return int(label)
    if isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
        return int(label)
    raise TypeError(f"labels: data[{i}] has label {label!r}; expected an integer class index")


# ---------------------------------------------------------------------------------------
# Built-in datasets

def _canonical(name: str) -> str | None:
    return _ALIASES.get(name.lower().replace("-", "").replace("_", ""))


def _known_list() -> str:
    parts = []
    for name, aliases in known_datasets().items():
        parts.append(f"{name} (alias {', '.join(aliases)})" if aliases else name)
    return ", ".join(parts)


def _load_digits(split: str, root: Path | None) -> ClassData:
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = (np.arange(len(d.target)) % 5 == 0) == (split == "test")  # test: every 5th image
    images = (d.images[keep] / 16.0).astype(np.float32)
    return _from_arrays(images, d.target[keep], name="digits", num_classes=10,
                        stats=DATASET_STATS["digits"], classes=_DIGIT_CLASSES)


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


# CIFAR: the python pickles of the dataset's own distribution. They are read with an
# unpickler that resolves only numpy's array/dtype reconstructors (dict/list/str/bytes
# need no globals), so a tampered file cannot run code.
class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle that asks for a global other than numpy's array reconstructors."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path
        probe = np.zeros(1)
        # Taken from numpy's own reducers: the same objects in numpy 1.x and 2.x.
        reconstruct, frombuffer = probe.__reduce__()[0], probe.__reduce_ex__(5)[0]
        scalar = np.float64(0).__reduce__()[0]
        self.allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
        for core in ("numpy.core", "numpy._core"):
            self.allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
            self.allowed[(f"{core}.multiarray", "scalar")] = scalar
            self.allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer

    def find_class(self, module, name):
        obj = self.allowed.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"{self.path}: refusing to load global {module}.{name}: CIFAR batches hold only "
                "containers and numpy arrays")
        return obj


def _load_pickle(path: Path) -> dict:
    with open(path, "rb") as f:
        try:
            obj = _ArrayOnlyUnpickler(f, path).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
                AttributeError) as exc:
            raise ValueError(f"{path}: truncated or corrupt pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    return obj


def _entry(d: dict, key: str, path: Path):
    for k in (key.encode(), key):  # Python 2 pickles give bytes keys
        if k in d:
            return d[k]
    raise ValueError(f"{path}: no {key!r} entry (has {sorted(str(k) for k in d)})")


_CIFAR = {
    "cifar10": dict(folder="cifar-10-batches-py", train=[f"data_batch_{i}" for i in range(1, 6)],
                    test=["test_batch"], labels="labels", meta="batches.meta", names="label_names"),
    "cifar100": dict(folder="cifar-100-python", train=["train"], test=["test"],
                     labels="fine_labels", meta="meta", names="fine_label_names"),
}


def _cifar_dir(name: str, root: Path | None) -> Path:
    spec = _CIFAR[name]
    if root is None:
        raise ValueError(f"root: {name} has no default location; pass root= the folder holding "
                         f"{spec['folder']}/")
    for d in (root / spec["folder"], root):
        if all((d / f).is_file() for f in spec["train"] + spec["test"]):
            return d
    raise FileNotFoundError(f"{name}: expected the python batches {spec['train'] + spec['test']} in "
                            f"{root / spec['folder']} or {root} (the extracted "
                            f"{spec['folder']} archive)")


def _load_cifar(name: str, split: str, root: Path | None) -> ClassData:
    spec = _CIFAR[name]
    d = _cifar_dir(name, root)
    xs, ys = [], []
    for fname in spec[split]:
        batch = _load_pickle(d / fname)
        x = np.asarray(_entry(batch, "data", d / fname))
        y = np.asarray(_entry(batch, spec["labels"], d / fname))
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(x) != len(y):
            raise ValueError(f"{d / fname}: expected data (N, 3072) and N labels, got shapes "
                             f"{x.shape} and {y.shape}")
        xs.append(x.reshape(-1, 3, 32, 32))  # rows are R, G, B planes of 32x32
        ys.append(y)
    num_classes = 10 if name == "cifar10" else 100
    classes = _CIFAR10_CLASSES if name == "cifar10" else None
    if (d / spec["meta"]).is_file():
        names = _entry(_load_pickle(d / spec["meta"]), spec["names"], d / spec["meta"])
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names][:num_classes]
    return _from_arrays(np.concatenate(xs), np.concatenate(ys), name=name, num_classes=num_classes,
                        stats=DATASET_STATS[name], classes=classes)


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


_LOADERS = {
    "digits": _load_digits,
    "mnist": lambda split, root: _load_mnist_family("mnist", split, root),
    "fashion-mnist": lambda split, root: _load_mnist_family("fashion-mnist", split, root),
    "cifar10": lambda split, root: _load_cifar("cifar10", split, root),
    "cifar100": lambda split, root: _load_cifar("cifar100", split, root),
    "svhn": _load_svhn,
}
# Keys are lower-case with '-' and '_' removed.
_ALIASES = {"digits": "digits", "mnist": "mnist", "fashionmnist": "fashion-mnist",
            "fashion": "fashion-mnist", "cifar10": "cifar10", "cifar100": "cifar100",
            "svhn": "svhn"}


# ---------------------------------------------------------------------------------------
# Folders: format detection and ImageFolder trees

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _load_folder(path: Path, split: str) -> ClassData:
    for sub, name in (("FashionMNIST", "fashion-mnist"), ("MNIST", "mnist")):
        if any(_find_idx(path / sub / "raw", s, ()) for s in SPLITS):
            return _load_mnist_family(name, split, path)
    if any(_find_idx(path, s, ()) for s in SPLITS):
        words = {part.lower().replace("-", "").replace("_", "") for part in path.resolve().parts}
        if words & {"fashionmnist", "fashion"}:
            return _load_mnist_family("fashion-mnist", split, path)
        if "mnist" in words:
            return _load_mnist_family("mnist", split, path)
        return _load_idx_folder(path, split, path.name)
    for name, spec in _CIFAR.items():
        if any((d / spec["test"][0]).is_file() and (d / spec["train"][0]).is_file()
               for d in (path, path / spec["folder"])):
            return _load_cifar(name, split, path)
    if any((d / "train_32x32.mat").is_file() for d in (path, path / "svhn")):
        return _load_svhn(split, path)
    return _load_image_folder(path, split)


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
    """(images (N, H, W[, 3]) uint8, labels, mode, size, first file); mode/size/first given
    for a test split make it match its train split."""
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
            arrays.append(np.asarray(im.convert(mode)))
    return np.stack(arrays), np.asarray(labels, dtype=np.int64), mode, size, first


def _pil_mode(modes) -> str:
    """L when every image is grayscale, else RGB (one channel count for the whole set)."""
    return "L" if all(m in _GRAY_MODES for m in modes) else "RGB"


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
