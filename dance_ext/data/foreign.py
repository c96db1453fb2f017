"""Dataset objects users already have, read as whole arrays rather than item by item:

* torchvision's MNIST, FashionMNIST, CIFAR10, CIFAR100 and SVHN (their ``.data`` uint8 pixels
  and ``.targets`` / SVHN's ``.labels``) and ImageFolder / DatasetFolder (``.samples``,
  ``.classes``): recognised by class name (subclasses included) and attributes, so
  torchvision need not be importable. The canonical name, statistics and presets apply.
  The raw pixels are read: transforms set on the object are not applied (dance_ext
  normalises itself).
* Hugging Face ``datasets``: a Dataset with an ``image`` or ``img`` column and a ``label``
  column (class names from ``features["label"].names``), or a DatasetDict, whose split is
  picked by ``split`` ("test" falls back to validation).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .classdata import ClassData
from .convert import _from_arrays, _pil_mode, _sample_tensor
from .images import read_images

# torchvision class -> (canonical dataset, label attribute)
_TORCHVISION_ARRAYS = {"MNIST": ("mnist", "targets"), "FashionMNIST": ("fashion-mnist", "targets"),
                       "CIFAR10": ("cifar10", "targets"), "CIFAR100": ("cifar100", "targets"),
                       "SVHN": ("svhn", "labels")}
_TORCHVISION_FOLDERS = ("ImageFolder", "DatasetFolder")
_HF_IMAGE_KEYS = ("image", "img")
_TEST_SPLITS = ("test", "validation", "valid", "val")


def recognise(obj, split: str) -> ClassData | None:
    """ClassData of a known foreign dataset object, or None when ``obj`` is none of them."""
    for cls in type(obj).__mro__:
        known = _TORCHVISION_ARRAYS.get(cls.__name__)
        if known and hasattr(obj, "data") and hasattr(obj, known[1]):
            return _torchvision_arrays(obj, *known)
        if cls.__name__ in _TORCHVISION_FOLDERS and hasattr(obj, "samples") and hasattr(obj, "classes"):
            return _torchvision_folder(obj)
    if isinstance(obj, dict) and obj and all(_is_hugging_face(v) for v in obj.values()):
        return _hugging_face(_pick_split(obj, split))
    return _hugging_face(obj) if _is_hugging_face(obj) else None


def _class_list(classes, num_classes: int | None = None) -> list[str] | None:
    ok = isinstance(classes, (list, tuple)) and classes and all(isinstance(c, str) for c in classes)
    return list(classes) if ok and (num_classes is None or len(classes) == num_classes) else None


def _torchvision_arrays(obj, name: str, label_attr: str) -> ClassData:
    from .registry import DATASET_STATS
    from .readers.digits import _DIGIT_CLASSES

    num_classes = 100 if name == "cifar100" else 10
    classes = _class_list(getattr(obj, "classes", None), num_classes)
    if classes is None and name in ("mnist", "svhn"):
        classes = _DIGIT_CLASSES
    return _from_arrays(obj.data, np.asarray(getattr(obj, label_attr)), name=name, num_classes=num_classes,
                        stats=DATASET_STATS[name], classes=classes)


def _torchvision_folder(obj) -> ClassData:
    """torchvision's default loader converts every image to RGB: so do we."""
    classes = _class_list(obj.classes)
    if not obj.samples or classes is None:
        raise ValueError(f"data: the {type(obj).__name__} has no samples or no class names")
    paths, labels = zip(*obj.samples)
    images = read_images([Path(p) for p in paths], "RGB")
    name = Path(getattr(obj, "root", "")).name or type(obj).__name__
    return _from_arrays(images, np.asarray(labels, np.int64), name=name, num_classes=len(classes),
                        classes=classes)


def _is_hugging_face(obj) -> bool:
    return hasattr(obj, "features") and hasattr(obj, "column_names") and hasattr(obj, "__getitem__")


def _pick_split(splits: dict, split: str):
    for key in (split,) if split == "train" else _TEST_SPLITS:
        if key in splits:
            return splits[key]
    raise ValueError(f"split: the DatasetDict has splits {sorted(splits)}; none of them is the {split!r} split "
                     f"(looked for {(split,) if split == 'train' else _TEST_SPLITS})")


def _hugging_face(ds) -> ClassData:
    from .registry import DATASET_STATS, _canonical

    columns = list(ds.column_names)
    key = next((k for k in _HF_IMAGE_KEYS if k in columns), None)
    if key is None or "label" not in columns:
        raise ValueError(f"data: a Hugging Face dataset needs an 'image' or 'img' column and a 'label' column; "
                         f"it has {columns}")
    images = _stack(list(ds[key]))
    label_feature = ds.features["label"]
    classes = _class_list(getattr(label_feature, "names", None))
    info_name = getattr(getattr(ds, "info", None), "dataset_name", None)
    name = (_canonical(info_name) if isinstance(info_name, str) else None)
    return _from_arrays(images, np.asarray(list(ds["label"])), name=name or info_name or "huggingface",
                        num_classes=len(classes) if classes else None,
                        stats=DATASET_STATS.get(name) if name else None, classes=classes)


def _stack(images: list) -> np.ndarray:
    """PIL images in one mode for the whole set (L when all are grey, else RGB), or arrays."""
    from PIL import Image

    if images and all(isinstance(im, Image.Image) for im in images):
        mode = _pil_mode([im.mode for im in images])
        arrays = [np.asarray(im.convert(mode)) for im in images]
    else:
        arrays = [_sample_tensor(im, i).numpy() for i, im in enumerate(images)]
    first = arrays[0].shape if arrays else None
    bad = next((i for i, a in enumerate(arrays) if a.shape != first), None)
    if bad is not None:
        raise ValueError(f"data[{bad}]: image of shape {arrays[bad].shape} differs from data[0]'s {first}; "
                         "all images must have one size")
    if not arrays:
        raise ValueError("data: the dataset is empty")
    return np.stack(arrays)
