"""ClassData, and the value checks it shares with conversion and the rest of the package."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from ..checks import describe
from ..files import sha256_tensors
from ..utils import resolve_device


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
                            f"{describe(x)} (as_class_data converts arrays and uint8)")
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.dim() != 1:
            raise TypeError(f"labels: expected an int64 tensor (N,), got {describe(y)}")
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
            raise TypeError(f"x: {what} expects a floating tensor, got {describe(x)}")
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
    def content_sha256(self) -> str:
        """sha256 of the pixels and labels (computed once): binds expert stores and
        checkpoints to the data they were made from."""
        if "sha256" not in self._stats_cache:
            self._stats_cache["sha256"] = sha256_tensors(self.images, self.labels)
        return self._stats_cache["sha256"]

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


def _require_data(t: torch.Tensor, arg: str) -> None:
    if t.device.type == "meta":
        raise ValueError(f"{arg}: a meta tensor has a shape but no values; expected a tensor on the cpu or "
                         "a cuda device")


def check_finite(x: torch.Tensor, arg: str) -> None:
    """Raise ValueError naming ``arg`` when ``x`` has no values (meta device) or a NaN / inf."""
    _require_data(x, arg)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{arg}: contains NaN or inf")


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
