"""Watching a condensation run through ``condense(..., callback=...)``: a plain log file,
TensorBoard (the ``tensorboard`` extra) and class × IPC grid PNGs while it runs.

Each watcher is a callable taking the callback's row (see ``dance_ext.condense``);
``Watchers`` bundles the ones asked for and closes them. Image grids are drawn at the
first log row at or past each multiple of K iterations (rows come every ``log_every``).
"""
from __future__ import annotations

from pathlib import Path


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class _Every:
    """True at the first iteration at or past each multiple of ``k`` (never for k = 0)."""

    def __init__(self, k: int):
        self.k, self.next = k, k

    def __call__(self, iteration: int) -> bool:
        if not self.k or iteration < self.next:
            return False
        self.next = (iteration // self.k + 1) * self.k
        return True


def grid_array(images, ipc: int):
    """The callback's images as a uint8 (H, W, channels) class × IPC grid."""
    import torch

    from .results import image_grid

    classes = images.shape[0] // ipc
    return image_grid(images, torch.arange(classes).repeat_interleave(ipc), classes)


class LogFile:
    """One line per log row, appended: ``iteration=… inner_loss=… calib_loss=… lr=… seconds=…``."""

    def __init__(self, path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a", buffering=1)  # line-buffered: a crash keeps every row written

    def __call__(self, row: dict) -> None:
        fields = [f"iteration={row['iteration']}", f"inner_loss={row['inner_loss']:.6g}"]
        if row["calib_loss"] is not None:
            fields.append(f"calib_loss={row['calib_loss']:.6g}")
        fields += [f"lr={row['lr']:g}", f"seconds={row['seconds']:.1f}"]
        self.file.write(" ".join(fields) + "\n")

    def close(self) -> None:
        self.file.close()


class TensorBoard:
    """Losses and learning rate at every row; the image grid every ``images_every`` iterations."""

    def __init__(self, log_dir, ipc: int, images_every: int = 100):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise MissingExtra(f"--tensorboard needs the tensorboard package, which does not import ({exc}); "
                               "install the extra: pip install 'dance_ext[tensorboard]'") from None
        self.writer, self.ipc, self.images_due = SummaryWriter(str(log_dir)), ipc, _Every(images_every)

    def __call__(self, row: dict) -> None:
        step = row["iteration"]
        self.writer.add_scalar("loss/inner", row["inner_loss"], step)
        if row["calib_loss"] is not None:
            self.writer.add_scalar("loss/calibration", row["calib_loss"], step)
        self.writer.add_scalar("lr", row["lr"], step)
        if self.images_due(step):
            self.writer.add_image("synthetic", grid_array(row["images"], self.ipc), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


class GridPNGs:
    """``folder/grid_it{iteration}.png`` every ``every`` iterations, rows named by ``classes``
    (as the final grid.png)."""

    def __init__(self, folder, ipc: int, every: int, classes=None):
        self.folder, self.ipc, self.due, self.classes = Path(folder), ipc, _Every(every), classes

    def __call__(self, row: dict) -> None:
        if self.due(row["iteration"]):
            from .files import atomic_write
            from .results import png_bytes

            png = png_bytes(grid_array(row["images"], self.ipc), row_labels=self.classes)
            atomic_write(self.folder / f"grid_it{row['iteration']}.png", lambda tmp: Path(tmp).write_bytes(png))


class Watchers:
    """The watchers asked for, as one callback (None when none is); a context manager that closes them."""

    def __init__(self, ipc: int, log_file=None, tensorboard=None, tensorboard_images_every: int = 100,
                 grids=None, grids_every: int = 0, classes=None):
        self.parts = []
        if tensorboard:  # first: the one that can fail
            self.parts.append(TensorBoard(tensorboard, ipc, tensorboard_images_every))
        if log_file:
            self.parts.append(LogFile(log_file))
        if grids and grids_every:
            self.parts.append(GridPNGs(grids, ipc, grids_every, classes))

    def __call__(self, row: dict) -> None:
        for part in self.parts:
            part(row)

    def __enter__(self):
        return self if self.parts else None

    def __exit__(self, *exc) -> None:
        for part in self.parts:
            if hasattr(part, "close"):
                part.close()
