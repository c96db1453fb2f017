"""Condensed sets in: the four export formats (export.py describes their layouts), DM's and
DANCE's own files and folders of PNGs, and our saved results, into a CondenseResult that
``evaluate``, ``compare`` and ``export`` accept. Loading never runs pickled code
(``files.load_tensors``: ``torch.load(weights_only=True)``)."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from ..checks import describe, positive_int
from ..data.classdata import _check_label_range
from ..data.convert import _inferred_num_classes
from ..data.convert import _pil_mode, _to_images, _to_labels
from ..data.pixels import SYNTHETIC_SLACK
from ..data.registry import DATASET_STATS
from ..files import load_tensors
from ..formats import READABLE, png
from ..formats.common import DANCE_STATS, check_format, denormalise, json_object, known_name, read_json
from ..formats.export import DANCE_ARGS, DANCE_FILE, META_FILE
from ..results import CondenseResult, check_result

_DM_FILE = re.compile(r"res_(?P<method>[^_]+)_(?P<dataset>.+)_(?P<model>[^_]+)_(?P<ipc>\d+)ipc\.pt")
_DANCE_FILE = re.compile(r"data_(best|\d+)\.pt")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def load_set(path, format: str | None = None, *, dataset: str | None = None, mean=None, std=None,
             factor: int | None = None, experiment: int = 0) -> CondenseResult:
    """Read a condensed set in any of ``READABLE`` formats (inferred from the files when
    unambiguous). ``dataset``, ``mean``/``std`` say what the files do not (the DM format
    stores normalised images, so it needs the statistics); ``factor`` is DANCE's
    multi-formation factor where no args.log records it; ``experiment`` picks one of the
    sets a DM file holds (one per experiment)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no condensed set at {path}")
    format = detect(path) if format is None else check_format(format, READABLE)
    if (mean is None) != (std is None):
        raise ValueError("mean/std: pass both (one value per channel) or neither")
    given = {"dataset": known_name(dataset) or dataset, "mean": mean, "std": std}
    if format == "result":
        return CondenseResult.load(path)
    if format == "dm":
        return _load_dm(path, given, experiment)
    if format == "dance":
        return _load_dance(path, given, factor)
    return (_load_tensors if format == "tensors" else _load_imagefolder)(path, given)


def detect(path: Path) -> str:
    """The one format whose files ``path`` holds; a one-line error asking for format= otherwise."""
    if path.is_file():
        found = {"syn.pt": "result", "images.pt": "tensors", "labels.pt": "tensors"}.get(path.name)
        found = found or ("dm" if _DM_FILE.fullmatch(path.name) else "dance" if _DANCE_FILE.fullmatch(path.name)
                          else None)
        candidates = [found] if found else []
    else:
        names = {p.name for p in path.iterdir()}
        candidates = [fmt for fmt, hit in (
            ("result", "syn.pt" in names), ("tensors", {"images.pt", "labels.pt"} <= names),
            ("dm", any(_DM_FILE.fullmatch(n) for n in names)),
            ("dance", any(_DANCE_FILE.fullmatch(n) for n in names)),
            ("imagefolder", any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()))) if hit]
    if len(candidates) == 1:
        return candidates[0]
    what = (f"it holds files of the formats {', '.join(candidates)}" if candidates else
            "expected syn.pt, images.pt + labels.pt, res_*.pt (DM), data_*.pt (DANCE) or class folders of images")
    raise ValueError(f"format: cannot tell the format of {path} ({what}); pass format= one of {READABLE}")


def _meta_beside(file: Path) -> dict:
    return read_json(file) if file.is_file() else {}


def _with_stats(meta: dict, given: dict, table: dict | None = None) -> dict:
    """Caller's values first, then the file's, then the dataset's statistics."""
    meta = {**meta, **{k: v for k, v in given.items() if v is not None}}
    name = meta.get("dataset")
    stats = (table or {}).get(name) or DATASET_STATS.get(name)
    if stats is not None and meta.get("mean") is None:
        meta["mean"], meta["std"] = list(stats[0]), list(stats[1])
    return meta


def _tensor_file(file: Path, what: str) -> torch.Tensor:
    value = load_tensors(file, "path", "tensor file")
    if not isinstance(value, torch.Tensor):
        keys = f" with keys {sorted(map(str, value))}" if isinstance(value, dict) else ""
        raise ValueError(f"path: {file} holds a {type(value).__name__}{keys}; expected one tensor of {what}")
    return value


def _load_tensors(path: Path, given: dict) -> CondenseResult:
    folder = path if path.is_dir() else path.parent
    images = _to_images(_tensor_file(folder / "images.pt", "images (N, C, H, W)"), f"{folder / 'images.pt'}: images",
                        SYNTHETIC_SLACK)
    labels = _to_labels(_tensor_file(folder / "labels.pt", "labels (N,)"), images.shape[0],
                        f"{folder / 'labels.pt'}: labels")
    meta = _with_stats(_meta_beside(folder / META_FILE), given)
    return imported(images, labels, _imported_meta(meta, "tensors", folder), f"path: {folder}: ")


def _imported_meta(meta: dict, format: str, source: Path) -> dict:
    keep = ("dataset", "method", "num_classes", "classes", "mean", "std", "ipc", "iterations", "seed")
    return {**{k: meta.get(k) for k in keep}, "factor": 1, "source_format": format, "source": str(source)}


def _read_png_or_image(file: Path) -> np.ndarray:
    """float32 (H, W, C) in [0, 1]: PNGs exactly at 8 or 16 bits, other images through Pillow."""
    pixels = png.decode(file.read_bytes(), str(file)) if file.suffix.lower() == ".png" else None
    if pixels is None:
        from PIL import Image

        with Image.open(file) as im:
            pixels = np.asarray(im.convert(_pil_mode([im.mode])))
    pixels = pixels if pixels.ndim == 3 else pixels[..., None]
    return pixels.astype(np.float32) / (65535 if pixels.dtype == np.uint16 else 255)


def _load_imagefolder(path: Path, given: dict) -> CondenseResult:
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    meta = _meta_beside(path / META_FILE) or {"classes": [f.name for f in folders]}
    arrays, labels = [], []
    for c, folder in enumerate(folders):
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"path: {folder}: class folder without images")
        arrays += [_read_png_or_image(f) for f in files]
        labels += [c] * len(files)
    if not arrays:
        raise ValueError(f"path: {path} has no class folders of images")
    channels = max(a.shape[2] for a in arrays)  # a grey image in an RGB set becomes RGB
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"path: {path}: images of sizes {sorted(shapes)}; all images must have one size")
    images = torch.from_numpy(np.stack([np.broadcast_to(a, (*a.shape[:2], channels)) for a in arrays]))
    meta = _with_stats(meta, given)
    return imported(images.permute(0, 3, 1, 2).contiguous(), torch.tensor(labels),
                    _imported_meta(meta, "imagefolder", path), f"path: {path}: ")


def _dm_file(path: Path) -> Path:
    if path.is_file():
        return path
    found = sorted(p for p in path.iterdir() if _DM_FILE.fullmatch(p.name))
    if len(found) != 1:
        raise ValueError(f"path: {path} holds {len(found)} DM result files (res_*.pt); pass the file itself")
    return found[0]


def _dance_file(path: Path) -> Path:
    """data_best.pt (the set DANCE keeps), else its last save data_<iteration>.pt."""
    if path.is_file():
        return path
    if (path / DANCE_FILE).is_file():
        return path / DANCE_FILE
    found = [p for p in path.iterdir() if _DANCE_FILE.fullmatch(p.name)]
    if not found:
        raise ValueError(f"path: {path} holds no DANCE data file (data_best.pt or data_<iteration>.pt)")
    return max(found, key=lambda p: int(p.stem.split("_")[1]))


def _pair(value, file: Path, what: str) -> tuple:
    """(images, labels) of an [images (N, C, H, W) float, labels] pair, as both codes store them."""
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, torch.Tensor) for v in value)
    if not ok or value[0].dim() != 4 or not value[0].is_floating_point():
        found = ", ".join(describe(v) for v in value) if isinstance(value, (list, tuple)) else describe(value)
        raise ValueError(f"path: {file}: expected {what} with float images (N, C, H, W), got {found}")
    return value


def _load_dm(path: Path, given: dict, experiment: int) -> CondenseResult:
    file = _dm_file(path)
    payload = load_tensors(file, "path", "DM result file", numpy_scalars=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list) or not payload["data"]:
        keys = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"path: {file} is not a DM result: expected a dict with a non-empty list under 'data' "
                         f"([[image_syn, label_syn], ...]), found {keys}")
    if not isinstance(experiment, int) or not -len(payload["data"]) <= experiment < len(payload["data"]):
        raise ValueError(f"experiment: {file} holds {len(payload['data'])} experiments' sets, got {experiment!r}")
    images, labels = _pair(payload["data"][experiment], file, "[image_syn, label_syn]")
    labels = _to_labels(labels, images.shape[0], f"{file}: labels")
    sidecar = payload.get("dance_ext_meta")
    named = _DM_FILE.fullmatch(file.name)
    meta = json_object(sidecar, f"path: {file}: dance_ext_meta") if isinstance(sidecar, str) else {
        "dataset": known_name(named.group("dataset")) if named else None, "method": "dm"}
    meta = _with_stats(meta, given)
    if meta.get("mean") is None:
        raise ValueError(f"mean/std: {file} holds normalised images of an unknown dataset; pass dataset= or "
                         "mean= and std= to undo the normalisation")
    images = denormalise(images.float(), meta["mean"], meta["std"])
    return imported(images, labels, _imported_meta(meta, "dm", file), f"path: {file}: ")


def _load_dance(path: Path, given: dict, factor) -> CondenseResult:
    file = _dance_file(path)
    images, labels = _pair(load_tensors(file, "path", "DANCE data file"), file, "[data, target]")
    args = _meta_beside(file.parent / DANCE_ARGS)
    if args.get("decode_type", "single") != "single":
        raise ValueError(f"path: {file.parent / DANCE_ARGS}: decode_type {args['decode_type']!r}; only DANCE's "
                         "default 'single' multi-formation is supported")
    factor = factor if factor is not None else args.get("factor")
    if factor is None:
        raise ValueError(f"factor: {file} has no args.log beside it to tell DANCE's multi-formation factor; pass "
                         "factor= (1 for sets stored decoded)")
    factor = positive_int("factor", factor)
    meta = args.get("dance_ext") or {"dataset": known_name(args.get("dataset")), "method": "dance",
                                     "ipc": args.get("ipc"), "iterations": args.get("niter")}
    meta = _with_stats(meta, given, DANCE_STATS)
    labels = _to_labels(labels, images.shape[0], f"{file}: labels")
    out = _imported_meta(meta, "dance", file)
    out["factor"] = factor
    return imported(images.float().contiguous(), labels, out, f"path: {file}: ")


def imported(images: torch.Tensor, labels: torch.Tensor, meta: dict, where: str) -> CondenseResult:
    """A CondenseResult of loaded tensors: None entries dropped (evaluate then takes them from
    its test set), num_classes inferred from the labels where not known, everything checked."""
    meta = {k: v for k, v in meta.items() if v is not None}
    if "num_classes" not in meta:
        _check_label_range(labels, None)
        meta["num_classes"] = _inferred_num_classes(labels)
    meta.setdefault("factor", 1)
    classes = meta.get("classes")
    if classes is not None and len(classes) != meta["num_classes"]:
        raise ValueError(f"{where}classes: {len(classes)} names for num_classes={meta['num_classes']}")
    for key in ("mean", "std"):
        if key in meta and not all(math.isfinite(float(v)) for v in meta[key]):
            raise ValueError(f"{where}{key}: expected finite values, got {meta[key]}")
    check_result(images, labels, meta, where=where)
    return CondenseResult(images, labels, meta)
