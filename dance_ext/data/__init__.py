"""Datasets -> class-indexed tensors.

Everything becomes a :class:`ClassData`: float32 images in [0, 1] pixel space (N, C, H, W),
int64 labels, the dataset's normalisation statistics and per-class index tables. Images
stay in pixel space (DANCE's convention, docs/ALGORITHMS.md §3.2); ``normalize`` applies the
statistics where a network sees them.

Sources: the built-in names of ``load_dataset`` (sklearn digits offline; MNIST /
Fashion-MNIST IDX files, CIFAR-10/100 python pickles, SVHN .mat from a local ``root``),
a folder (its format is detected, ImageFolder trees included), (images, labels) tensors or
arrays, and any ``torch.utils.data.Dataset`` yielding (image, label). No torchvision needed.

Layout: ``classdata`` (ClassData), ``convert`` (arrays / Datasets -> ClassData), ``pixels`` (exact
pixels of PIL images, the float range rule), ``registry``
(names, statistics, folder detection, the entry points) and one module per format under
``readers``, each registering itself: a new format is one new reader module.
"""
from . import readers  # noqa: F401  (registers the built-in datasets and folder formats)
from .classdata import ClassData, check_finite
from .pixels import check_pixel_range
from .readers.cifar import UnsafePickleError
from .readers.idx import FASHION_MNIST_DEBIAN_ROOT, read_idx
from .registry import DATASET_STATS, SPLITS, as_class_data, known_datasets, load_dataset

__all__ = ["ClassData", "DATASET_STATS", "FASHION_MNIST_DEBIAN_ROOT", "SPLITS", "UnsafePickleError",
           "as_class_data", "check_finite", "check_pixel_range", "known_datasets", "load_dataset", "read_idx"]
