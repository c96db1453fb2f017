"""A condensed set: images, labels, every setting used; saving and loading it."""
from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checks import describe, is_int
from .files import json_default, load_tensors, regular_file, sha256_file, sha256_tensors
from .folders import DirectoryLock, check_output_dir, remove_stale_temps, replace_folder
from .formats.export import export as export_set
from .data import check_finite
from .synthetic import decode

# 2: syn.pt carries the sha256 of its content, so a flipped byte in the tensor data is caught;
# 3: and the sha256 of grid.png and metrics.json, so files of two saves are never read as one
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
# bounds on what a (possibly foreign) file may ask to allocate: the papers use factors 1-3
MAX_FACTOR, MAX_CLASSES = 8, 100_000
READ_ATTEMPTS = 5


def image_grid(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Rows = classes, columns = images of the class; uint8 (H·C, W·ipc, ch) with a 1 px gap."""
    images = images.detach().float().clamp(0, 1).cpu()
    per_class = [images[labels.cpu() == c] for c in range(num_classes)]
    cols = max(1, max(len(p) for p in per_class))
    ch, h, w = images.shape[1:]
    grid = np.ones(((h + 1) * num_classes + 1, (w + 1) * cols + 1, ch), dtype=np.float32)
    for c, imgs in enumerate(per_class):
        for j, img in enumerate(imgs):
            top, left = 1 + c * (h + 1), 1 + j * (w + 1)
            grid[top:top + h, left:left + w] = img.permute(1, 2, 0).numpy()
    return (grid * 255 + 0.5).astype(np.uint8)


def png_bytes(array: np.ndarray, min_side: int = 256, row_labels=None) -> bytes:
    """The grid as PNG, scaled up to ``min_side``; ``row_labels`` (one per row of an
    ``image_grid``: the class names) are written in a margin on the left."""
    image = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    scale = max(1, math.ceil(min_side / max(1, min(image.size))))
    if scale > 1:  # small images (8×8 digits) are unreadable at 1:1
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    if row_labels:
        image = _label_rows(image, [str(t)[:24] for t in row_labels], scale)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _label_rows(image: Image.Image, labels: list[str], scale: int) -> Image.Image:
    """A white left margin with each label centred on its grid row (rows of equal pitch
    below a gap of ``scale`` pixels)."""
    from PIL import ImageDraw, ImageFont

    pitch = (image.height - scale) / len(labels)
    try:
        font = ImageFont.load_default(size=max(8, min(16, int(pitch * 0.6))))
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: its fixed bitmap font
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(image)
    margin = int(max(draw.textlength(t, font=font) for t in labels)) + 8
    canvas = Image.new(image.mode, (image.width + margin, image.height), "white")
    canvas.paste(image, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(labels):
        top, bottom = font.getbbox(text)[1::2]
        draw.text((4, scale + (i + 0.5) * pitch - (top + bottom) / 2), text, fill="black", font=font)
    return canvas


def grid_labels(meta: dict) -> list[str] | None:
    """The class names of a result's grid rows, when its meta knows them."""
    classes = meta.get("classes")
    return classes if isinstance(classes, list) and len(classes) == meta.get("num_classes") else None


def check_result(images, labels, meta, where: str = "") -> None:
    """Raise ValueError unless (images, labels, meta) form a condensed set that can be saved,
    decoded and evaluated; ``where`` prefixes the message (the file being loaded)."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4 \
            or images.shape[0] == 0:
        raise ValueError(f"{where}images: expected a non-empty float tensor (N, C, H, W), got "
                         f"{describe(images)}")
    check_finite(images, f"{where}images")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
        raise ValueError(f"{where}labels: expected an int64 tensor ({images.shape[0]},), one per image, got "
                         f"{describe(labels)}")
    num_classes = meta.get("num_classes") if isinstance(meta, dict) else None
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{where}meta: expected a dict with a positive int 'num_classes', got "
                         f"{num_classes if isinstance(meta, dict) else type(meta).__name__!r}")
    if num_classes > MAX_CLASSES:
        raise ValueError(f"{where}meta: num_classes: expected at most {MAX_CLASSES}, got {num_classes}")
    factor = meta.get("factor", 1)
    if not is_int(factor) or not 1 <= factor <= MAX_FACTOR:
        raise ValueError(f"{where}meta: factor: expected an int in [1, {MAX_FACTOR}], got {factor!r}")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"{where}labels: expected values in [0, {num_classes}) (meta's num_classes), "
                         f"got [{lo}, {hi}]")


@dataclass
class CondenseResult:
    """``images``: stored synthetic images (C·ipc, ch, H, W) in [0, 1] pixel space;
    ``labels``: (C·ipc,) class-major; ``meta``: every setting of the run (JSON-able);
    ``history``: logged losses; ``evaluation``: filled by ``evaluate`` when asked."""
    images: torch.Tensor
    labels: torch.Tensor
    meta: dict
    history: list = field(default_factory=list)
    evaluation: dict | None = None

    @property
    def factor(self) -> int:
        return int(self.meta.get("factor", 1))

    def decoded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training set the condensed images stand for: with multi-formation factor f,
        every stored image decodes to f² images (docs/ALGORITHMS.md §3.4)."""
        f = self.factor
        return decode(self.images, f), self.labels.repeat_interleave(f * f)

    def check(self) -> None:
        """Raise ValueError unless this is a set that can be saved, exported and evaluated."""
        check_result(self.images, self.labels, self.meta)

    def save(self, directory) -> Path:
        """Write syn.pt (tensors, meta, sha256 of its content and of the other files),
        grid.png and metrics.json. Everything is checked and serialised in memory first, so a
        bad result leaves ``directory`` as it was; the folder is then replaced as a unit, by
        one writer at a time (folders.py), so a reader sees the old result or the new one."""
        self.check()
        directory = Path(directory)
        check_output_dir(directory, "directory")
        # clone: a view would otherwise be saved with the whole storage behind it
        images, labels = self.images.detach().cpu().clone(), self.labels.cpu().clone()
        meta_json = json.dumps(self.meta, default=json_default)
        metrics = {"meta": self.meta, "history": self.history, "evaluation": self.evaluation}
        files = {"grid.png": png_bytes(image_grid(images, labels, self.meta["num_classes"]),
                                       row_labels=grid_labels(self.meta)),
                 "metrics.json": json.dumps(metrics, indent=2, default=json_default).encode()}
        payload = {"format_version": FORMAT_VERSION, "images": images, "labels": labels, "meta_json": meta_json,
                   "sha256": sha256_tensors(images, labels, extra=meta_json.encode()),
                   "files": {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        files["syn.pt"] = buffer.getvalue()
        with DirectoryLock(directory, "directory"):
            remove_stale_temps(directory)
            replace_folder(directory, files)
        return directory

    def export(self, directory, format: str) -> Path:
        """Write the set in one of the field's formats ("tensors", "imagefolder", "dm",
        "dance"; see ``dance_ext.formats``); ``dance_ext.load_set`` reads them back."""
        return export_set(self, directory, format)

    @classmethod
    def load(cls, path) -> "CondenseResult":
        """Load a saved result (a directory or its syn.pt) without executing pickled code;
        a tampered, truncated or foreign file is a ValueError naming it. A save that swaps
        the folder while this reads it is met by reading again (the swap is atomic)."""
        path = Path(path)
        file = path / "syn.pt" if path.is_dir() else path
        for attempt in range(READ_ATTEMPTS):
            try:
                return cls._load_once(file)
            except (_Torn, FileNotFoundError):
                if attempt + 1 == READ_ATTEMPTS:
                    raise

    @classmethod
    def _load_once(cls, file: Path) -> "CondenseResult":
        if not file.is_file():
            raise FileNotFoundError(f"path: no condensed set at {file} (expected a directory written by "
                                    f"CondenseResult.save, holding syn.pt)")
        payload = load_tensors(file, "path", "dance_ext result")
        version = payload.get("format_version") if isinstance(payload, dict) else type(payload).__name__
        if version not in READABLE_VERSIONS:
            known = ", ".join(map(str, READABLE_VERSIONS[:-1])) + f" or {READABLE_VERSIONS[-1]}"
            raise ValueError(f"path: {file} is not a dance_ext result of format {known} (found {version!r})")
        images, labels, meta_json = (payload.get(k) for k in ("images", "labels", "meta_json"))
        intact = isinstance(meta_json, str) and all(isinstance(t, torch.Tensor) for t in (images, labels)) and (
            version == 1  # format 1 had no checksum
            or payload.get("sha256") == sha256_tensors(images, labels, extra=meta_json.encode()))
        if not intact:
            raise ValueError(f"path: {file}: its content does not match its sha256; the file is corrupt or "
                             "was edited")
        try:
            meta = json.loads(meta_json)
        except ValueError as exc:
            raise ValueError(f"path: {file}: unreadable meta_json ({exc})") from exc
        check_result(images, labels, meta, where=f"path: {file}: ")
        bound = dict(payload.get("files", {}))
        metrics = _read_metrics(file, bound.pop("metrics.json", None))
        _check_siblings(file, bound)
        return cls(images, labels, meta, history=metrics.get("history", []),
                   evaluation=metrics.get("evaluation"))


class _Torn(ValueError):
    """Files of one folder that belong to different saves."""


def _check_siblings(file: Path, bound: dict) -> None:
    """The files syn.pt names (format 3) must be the ones it was saved with."""
    for name, digest in bound.items():
        sibling = file.parent / name
        if sibling.exists() and (not regular_file(sibling, "path") or sha256_file(sibling) != digest):
            raise _Torn(_not_ours(sibling, file))


def _not_ours(sibling: Path, file: Path) -> str:
    return f"path: {sibling} does not belong to {file} (another save wrote it, or it was edited); save the result again"


def _read_metrics(file: Path, digest: str | None) -> dict:
    """metrics.json beside syn.pt ``file``: history and evaluation (optional; syn.pt is the
    result), checked against the ``digest`` syn.pt holds for it."""
    metrics_file = file.parent / "metrics.json"
    if not metrics_file.exists() or not regular_file(metrics_file, "path"):
        return {}
    try:
        raw = metrics_file.read_bytes()
        metrics = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise ValueError(f"path: {metrics_file} is unreadable ({exc})") from exc
    if digest is not None and hashlib.sha256(raw).hexdigest() != digest:
        raise _Torn(_not_ours(metrics_file, file))
    if not isinstance(metrics, dict):
        raise ValueError(f"path: {metrics_file}: expected a JSON object, got {type(metrics).__name__}")
    return metrics
