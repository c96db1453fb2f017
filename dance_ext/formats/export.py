"""Condensed sets out, in the field's formats (docs: README "Interoperability"):

* ``tensors``: images.pt (float32 (N, C, H, W) decoded images in [0, 1]), labels.pt (int64
  (N,)) and meta.json (mean, std, classes, …): DD-Ranking's ``image_tensor`` and
  ``hard_labels``. The consumer normalises: (x − mean) / std per channel.
* ``imagefolder``: <class>/<i>.png per decoded image, class folders "000_name" (so sorted
  folder order is label order) and meta.json. 8-bit PNGs when every value of the set is a
  multiple of 1/255 (real images: exact), else 16-bit (error ≤ 1/131070).
* ``dm``: DM's res_<METHOD>_<DATASET>_ConvNet_<ipc>ipc.pt, {"data": [[image_syn, label_syn]],
  "accs_all_exps": {...}}, images normalised as DM keeps them, plus our meta as a JSON string
  under "dance_ext_meta" (DM's readers index "data" only).
* ``dance``: DANCE's data_best.pt, [data, targets] with the undecoded mosaics in [0, 1], and
  args.log (JSON of its arguments: dataset, ipc, factor, decode_type, …).

Every file is built in memory first (a bad set leaves ``directory`` untouched), then written
atomically, the file that makes the folder valid last."""
from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from ..files import json_default, write_files
from ..folders import check_output_dir
from . import png
from .common import (DANCE_NAMES, DM_NAMES, check_format, decoded_pixels, normalise, official_name,
                     shared_meta, stats_of)

META_FILE = "meta.json"
DANCE_FILE, DANCE_ARGS = "data_best.pt", "args.log"


def export(result, directory, format: str) -> Path:
    """Write ``result`` (a CondenseResult) to ``directory`` in ``format``; returns the folder."""
    check_format(format)
    result.check()
    directory = Path(directory)
    check_output_dir(directory, "directory")
    files, last = _WRITERS[format](result)
    if format == "imagefolder":
        _check_no_stale_images(directory, files)
    by_folder = defaultdict(dict)
    for relative, content in files.items():
        by_folder[Path(relative).parent][Path(relative).name] = content
    for folder in sorted(by_folder, key=lambda f: f == Path(".")):  # the top folder, holding `last`, last
        write_files(directory / folder, by_folder[folder], last=last if folder == Path(".") else None)
    return directory


def _check_no_stale_images(directory: Path, files: dict) -> None:
    """Images of an earlier export that this one would not replace would be read back as part
    of the set: refused rather than deleted."""
    stale = sorted(str(p.relative_to(directory)) for p in directory.glob("*/*.png")) if directory.is_dir() else []
    stale = [p for p in stale if p not in files]
    if stale:
        raise ValueError(f"directory: {directory} already holds images this export would not replace (first: "
                         f"{stale[0]}); export into a new or empty folder")


def _torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, indent=2, default=json_default).encode()


def _tensors(result):
    images, labels = decoded_pixels(result)
    meta = {**shared_meta(result, "tensors"), "pixels": "[0, 1]; normalise with (x - mean) / std per channel"}
    return {"images.pt": _torch_bytes(images), "labels.pt": _torch_bytes(labels), META_FILE: _json_bytes(meta)}, \
        META_FILE


def class_folder(c: int, classes, num_classes: int) -> str:
    """'003_cat': zero-padded label first, so any ImageFolder reader's sorted order is ours."""
    index = f"{c:0{max(3, len(str(num_classes - 1)))}d}"
    name = re.sub(r"[^A-Za-z0-9.-]+", "_", classes[c]).strip("_.") if classes else ""
    return f"{index}_{name}" if name else index


def png_depth(images: torch.Tensor) -> int:
    """8 when every value is a multiple of 1/255 (within float rounding), else 16."""
    levels = images.clamp(0, 1) * 255
    return 8 if float((levels - levels.round()).abs().max()) < 1e-3 else 16


def _imagefolder(result):
    images, labels = decoded_pixels(result)
    depth = png_depth(images)
    top = 255 if depth == 8 else 65535
    pixels = (images.clamp(0, 1) * top).round().permute(0, 2, 3, 1).numpy()
    pixels = pixels.astype(np.uint8 if depth == 8 else np.uint16)
    num_classes, classes = result.meta["num_classes"], result.meta.get("classes")
    files, seen = {}, defaultdict(int)
    for array, c in zip(pixels, labels.tolist()):
        files[f"{class_folder(c, classes, num_classes)}/{seen[c]:05d}.png"] = png.encode(array)
        seen[c] += 1
    files[META_FILE] = _json_bytes({**shared_meta(result, "imagefolder"), "png_bits": depth})
    return files, META_FILE


def _dm(result):
    images, labels = decoded_pixels(result)
    mean, std = stats_of(result.meta, "the DM format (normalised images)")
    per_class = int(torch.bincount(labels).max())
    evaluation = result.evaluation or {}
    accs = {}
    if evaluation.get("runs"):  # DM records accuracies as fractions, per evaluation model
        arch = str(evaluation.get("arch", "convnet"))
        accs["ConvNet" if arch == "convnet" else arch] = [float(a) / 100 for a in evaluation["runs"]]
    method = str(result.meta.get("method", "DM")).upper()
    name = f"res_{method}_{official_name(result.meta.get('dataset'), DM_NAMES)}_ConvNet_{per_class}ipc.pt"
    payload = {"data": [[normalise(images, mean, std), labels]], "accs_all_exps": accs,
               "dance_ext_meta": json.dumps(shared_meta(result, "dm"), default=json_default)}
    return {name: _torch_bytes(payload)}, name


def _dance(result):
    meta = result.meta
    args = {"dataset": official_name(meta.get("dataset"), DANCE_NAMES), "ipc": meta.get("ipc"),
            "factor": result.factor, "decode_type": "single", "niter": meta.get("iterations"),
            "dance_ext": shared_meta(result, "dance")}
    data = [result.images.detach().cpu().float().contiguous(), result.labels.cpu().long()]
    return {DANCE_FILE: _torch_bytes(data), DANCE_ARGS: _json_bytes(args)}, DANCE_FILE


_WRITERS = {"tensors": _tensors, "imagefolder": _imagefolder, "dm": _dm, "dance": _dance}
