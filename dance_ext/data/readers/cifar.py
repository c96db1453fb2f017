"""CIFAR-10 / CIFAR-100 python batches, read without letting a pickle run code."""
from __future__ import annotations

import pickle
from functools import partial
from pathlib import Path

import numpy as np

from ..classdata import ClassData
from ..convert import _from_arrays
from ..registry import DATASET_STATS, FolderLoader, register, register_folder

_CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                    "ship", "truck"]


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


def _read_folder(path: Path) -> FolderLoader | None:
    """The extracted batches, in the folder itself or in the archive's own sub-folder."""
    for name, spec in _CIFAR.items():
        if any((d / spec["test"][0]).is_file() and (d / spec["train"][0]).is_file()
               for d in (path, path / spec["folder"])):
            return partial(_load_cifar, name, root=path)
    return None


register("cifar10", partial(_load_cifar, "cifar10"),
         stats=((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)))
# DM's CIFAR-100 statistics; DANCE's code uses the CIFAR-10 ones for CIFAR-100 (§3.2).
register("cifar100", partial(_load_cifar, "cifar100"),
         stats=((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)))
register_folder(_read_folder)
