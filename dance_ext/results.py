"""A condensed set: images, labels, every setting used; saving and loading it."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ._files import atomic_write
from .synthetic import decode

FORMAT_VERSION = 1


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


def save_png(array: np.ndarray, path: Path, min_side: int = 256) -> None:
    image = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    scale = max(1, math.ceil(min_side / max(1, min(image.size))))
    if scale > 1:  # small images (8×8 digits) are unreadable at 1:1
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (tuple, Path)):
        return list(value) if isinstance(value, tuple) else str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


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
        every stored image decodes to f² images (ALGORITHMS.md §3.4)."""
        f = self.factor
        return decode(self.images, f), self.labels.repeat_interleave(f * f)

    def save(self, directory) -> Path:
        """Write syn.pt (tensors + meta), grid.png and metrics.json, each atomically."""
        directory = Path(directory)
        payload = {"format_version": FORMAT_VERSION, "images": self.images.detach().cpu(),
                   "labels": self.labels.cpu(), "meta_json": json.dumps(self.meta, default=_json_default)}
        atomic_write(directory / "syn.pt", lambda tmp: torch.save(payload, tmp))
        save_png(image_grid(self.images, self.labels, int(self.meta["num_classes"])), directory / "grid.png")
        metrics = {"meta": self.meta, "history": self.history, "evaluation": self.evaluation}
        text = json.dumps(metrics, indent=2, default=_json_default)
        atomic_write(directory / "metrics.json", lambda tmp: Path(tmp).write_text(text))
        return directory

    @classmethod
    def load(cls, path) -> "CondenseResult":
        """Load a saved result (a directory or its syn.pt) without executing pickled code."""
        path = Path(path)
        file = path / "syn.pt" if path.is_dir() else path
        if not file.exists():
            raise FileNotFoundError(f"path: no condensed set at {file} (expected a directory written by "
                                    f"CondenseResult.save, holding syn.pt)")
        try:
            payload = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"path: {file} is not a readable dance_ext result ({exc})") from exc
        if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"path: {file} is not a dance_ext result of format {FORMAT_VERSION}")
        metrics_file = file.parent / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
        return cls(payload["images"], payload["labels"], json.loads(payload["meta_json"]),
                   history=metrics.get("history", []), evaluation=metrics.get("evaluation"))
