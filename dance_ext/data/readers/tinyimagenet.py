"""TinyImageNet in its distributed layout (tiny-imagenet-200.zip): wnids.txt,
train/<wnid>/images/*.JPEG, val/images/*.JPEG labelled by val/val_annotations.txt. The test
split is val (test/ has no labels). 64×64 RGB, ImageNet statistics (ALGORITHMS.md §1.1);
classes in wnid order, as DANCE's ImageFolder(train) orders them (§3.2). The whole tree is
checked before any image is decoded."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ..classdata import ClassData
from ..convert import _from_arrays
from ..images import read_images
from ..registry import DATASET_STATS, FolderLoader, register, register_folder

LAYOUT = ("wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG and val/val_annotations.txt "
          "(tab-separated: file, wnid, box)")
_SUFFIXES = {".jpeg", ".jpg", ".png"}


def _tree(root: Path) -> Path:
    """The folder holding wnids.txt: ``root`` or the archive's own tiny-imagenet-200/."""
    nested = root / "tiny-imagenet-200"
    return nested if not (root / "wnids.txt").is_file() and (nested / "wnids.txt").is_file() else root


def _require(path: Path, root: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"tinyimagenet: {path} is missing; expected under {root}: {LAYOUT}")
    return path


def _class_names(root: Path, wnids: list[str]) -> list[str]:
    """words.txt's first name per wnid where the tree has it, else the wnid."""
    words = {}
    if (root / "words.txt").is_file():
        for line in (root / "words.txt").read_text().splitlines():
            wnid, _, names = line.partition("\t")
            words[wnid] = names.split(",")[0].strip()
    return [words.get(w) or w for w in wnids]


def _train_index(root: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for c, wnid in enumerate(wnids):
        folder = _require(root / "train" / wnid / "images", root)
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES)
        if not found:
            raise FileNotFoundError(f"tinyimagenet: {folder} holds no images; expected under {root}: {LAYOUT}")
        files += found
        labels += [c] * len(found)
    return files, labels


def _val_index(root: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    annotations = _require(root / "val" / "val_annotations.txt", root)
    label_of = {w: c for c, w in enumerate(wnids)}
    files, labels = [], []
    for n, line in enumerate(annotations.read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, _, rest = line.partition("\t")
        wnid = rest.split("\t")[0]
        if wnid not in label_of:
            raise ValueError(f"tinyimagenet: {annotations} line {n}: wnid {wnid!r} is not in wnids.txt")
        files.append(_require(root / "val" / "images" / name, root))
        labels.append(label_of[wnid])
    if not files:
        raise ValueError(f"tinyimagenet: {annotations} lists no images")
    return files, labels


def _load_tiny(split: str, root: Path | None) -> ClassData:
    if root is None:
        raise ValueError("root: tinyimagenet has no default location; pass root= the folder holding "
                         "wnids.txt (tiny-imagenet-200/)")
    root = _tree(root)
    wnids = sorted(set(_require(root / "wnids.txt", root).read_text().split()))
    if not wnids:
        raise ValueError(f"tinyimagenet: {root / 'wnids.txt'} lists no wnids")
    train = _train_index(root, wnids)
    test = _val_index(root, wnids)  # indexed for either split: a broken tree fails before any work
    files, labels = train if split == "train" else test
    images = read_images(files, "RGB")
    return _from_arrays(images, np.asarray(labels, np.int64), name="tinyimagenet", num_classes=len(wnids),
                        stats=DATASET_STATS["tinyimagenet"], classes=_class_names(root, wnids))


def _read_folder(path: Path) -> FolderLoader | None:
    """A folder with wnids.txt and train/ (or the archive's tiny-imagenet-200/ inside it)."""
    tree = _tree(path)
    if (tree / "wnids.txt").is_file() and (tree / "train").is_dir():
        return partial(_load_tiny, root=path)
    return None


register("tinyimagenet", _load_tiny, stats=((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
         aliases=("tiny-imagenet", "tiny-imagenet-200"))
register_folder(_read_folder)
