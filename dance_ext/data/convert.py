"""Arrays, tensors and torch Datasets -> ClassData: float32 (N, C, H, W) pixels in [0, 1],
int64 labels, statistics from the data unless the caller gives them."""
from __future__ import annotations

import numpy as np
import torch

from .classdata import ClassData, _check_label_range, _require_data
from .pixels import check_pixel_range, pil_pixels

_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


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
    if v.dtype.kind == "u" and v.dtype.itemsize > 2:
        v = v.astype(np.int64)  # torch's uint32/64 lack most ops; uint16 stays: 16-bit pixels
    if not v.dtype.isnative:
        v = v.astype(v.dtype.newbyteorder("="))
    if not v.flags.writeable:
        v = v.copy()  # torch.from_numpy warns on read-only buffers
    return torch.from_numpy(np.ascontiguousarray(v))


def _to_images(images, arg: str = "images", slack: float = 0.0) -> torch.Tensor:
    """Any numeric (N,H,W), (N,C,H,W) or (N,H,W,C) image batch -> float32 (N,C,H,W) in [0,1], exactly:
    uint8 / 255, uint16 / 65535, other integers / 255 when in 0..255, floats as they are when in
    [0, 1] (``slack``: [-slack, 1 + slack], for synthetic sets); anything else is refused (data/pixels.py)."""
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
    if x.dtype == torch.uint16:
        x = x.to(torch.float32).div_(65535)
    if x.is_floating_point():
        x = x.to(torch.float32)
        check_pixel_range(x, arg, slack)
    else:
        if x.dtype != torch.uint8:
            lo, hi = (int(v) for v in torch.aminmax(x))
            if lo < 0 or hi > 255:
                raise ValueError(f"{arg}: integer values span [{lo}, {hi}]; expected 0..255 pixel values (or "
                                 "floats in [0, 1], or uint16 for 16-bit pixels)")
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
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            got = f"a {type(item).__name__} of {len(item)}" if isinstance(item, (tuple, list)) else type(item).__name__
            raise TypeError(f"data[{i}]: expected an (image, label) pair, got {got}")
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
    return _from_arrays(_stack_items(images), torch.tensor(labels, dtype=torch.int64),
                        name=type(ds).__name__, num_classes=len(classes) if ok else None,
                        classes=list(classes) if ok else None)


def _stack_items(images: list[torch.Tensor]) -> torch.Tensor:
    """One batch; items of mixed dtypes (8- and 16-bit images, floats) each go to [0, 1] first."""
    if len({img.dtype for img in images}) > 1:
        images = [_to_images(img.unsqueeze(0), f"data[{i}] image")[0] for i, img in enumerate(images)]
    return torch.stack(images)


def _sample_tensor(img, i: int) -> torch.Tensor:
    if isinstance(img, torch.Tensor):
        return img
    if isinstance(img, np.ndarray):
        return _as_tensor(img, f"data[{i}] image")
    from PIL import Image

    if isinstance(img, Image.Image):
        arr = pil_pixels(img, f"data[{i}] image")
        return _as_tensor(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1), f"data[{i}] image")
    raise TypeError(f"data[{i}]: expected the image as a tensor, numpy array or PIL image, "
                    f"got {type(img).__name__}")


def _sample_label(label, i: int) -> int:
    if isinstance(label, torch.Tensor) and label.numel() == 1 and not label.is_floating_point() \
            and label.dtype != torch.bool:
        return int(label)
    if isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
        return int(label)
    raise TypeError(f"labels: data[{i}] has label {label!r}; expected an integer class index")


def _pil_mode(modes) -> str:
    """L when every image is grayscale, else RGB (one channel count for the whole set)."""
    return "L" if all(m in _GRAY_MODES for m in modes) else "RGB"
