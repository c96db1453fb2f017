"""Pictures of a run, headless: the condensed images as a class × IPC grid, the loss curves
(inner and calibration) and test accuracy against condensation iterations.

Figures are built on ``matplotlib.figure.Figure`` without pyplot, so no GUI backend is
touched and a caller's pyplot state is left alone; PNGs are written atomically.
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .files import atomic_write
from .results import grid_labels, image_grid, png_bytes


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    return path


def condensed_grid(result, path) -> Path:
    """The stored synthetic images of ``result`` (a CondenseResult): one row per class,
    named by its class where meta["classes"] has the names, one column per image of the
    class (DANCE's mosaics as stored, before decoding)."""
    png = png_bytes(image_grid(result.images, result.labels, int(result.meta["num_classes"])),
                    row_labels=grid_labels(result.meta))
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(png))
    return Path(path)


def loss_curves(histories: dict[str, list[dict]], path) -> Path:
    """Per-class losses against iteration, one line per run label: the matching loss (DM's
    loss, DANCE's inner loss) on the left, DANCE's calibration cross-entropy on the right.
    ``histories``: label -> ``CondenseResult.history``."""
    fig = Figure(figsize=(10, 4))
    inner_ax, calib_ax = fig.subplots(1, 2)
    for label, history in histories.items():
        its = [row["iteration"] for row in history]
        inner_ax.plot(its, [row["inner_loss"] for row in history], label=label)
        calib = [(row["iteration"], row["calib_loss"]) for row in history if row.get("calib_loss") is not None]
        if calib:
            calib_ax.plot(*zip(*calib), label=label)
    inner_ax.set(title="matching loss (DM) / inner loss (DANCE), per class", xlabel="iteration",
                 ylabel="loss", yscale="log")
    calib_ax.set(title="calibration loss (DANCE), per class", xlabel="iteration", ylabel="cross-entropy")
    for ax in (inner_ax, calib_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_curves(curves: dict[str, list[dict]], path) -> Path:
    """Test accuracy (%) of networks trained on the set condensed so far, against the
    condensation iteration. ``curves``: label -> rows with "iteration", "mean", "std"."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for label, rows in curves.items():
        its = [r["iteration"] for r in rows]
        ax.errorbar(its, [r["mean"] for r in rows], yerr=[r["std"] for r in rows], marker="o", capsize=3,
                    label=label)
    ax.set(title="accuracy during condensation", xlabel="iteration", ylabel="test accuracy (%)")
    if curves:
        ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_vs_budget(cells: list[dict], path) -> Path:
    """Test accuracy (%) against the budget (log axis), one panel per IPC and one line per
    method, each paper's number as a dashed horizontal mark in the line's colour.
    ``cells``: rows with "method", "ipc", "budget", "mean", "std" and "paper" (or None)."""
    ipcs = sorted({c["ipc"] for c in cells})
    fig = Figure(figsize=(4.5 * max(len(ipcs), 1), 4))
    axes = fig.subplots(1, max(len(ipcs), 1), squeeze=False)[0]
    for ax, ipc in zip(axes, ipcs):
        for method in dict.fromkeys(c["method"] for c in cells if c["ipc"] == ipc):
            rows = sorted((c for c in cells if c["ipc"] == ipc and c["method"] == method), key=lambda c: c["budget"])
            line = ax.errorbar([c["budget"] for c in rows], [c["mean"] for c in rows],
                               yerr=[c["std"] for c in rows], marker="o", capsize=3, label=method)
            if rows[0]["paper"] is not None:
                ax.axhline(rows[0]["paper"], linestyle="--", linewidth=1, color=line[0].get_color())
        ax.set(xscale="log", title=f"IPC {ipc} (dashed: paper, full budget)", xlabel="budget",
               ylabel="test accuracy (%)")
        ax.legend(fontsize=8)
    return _save(fig, path)
