"""What every self-test check shares: a result row, the worst-error bookkeeping of a
parity grid, skips (and when a skip is a failure), timing, and the printed table."""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from .. import extension

REQUIRE_ENV = "DANCE_EXT_REQUIRE_KERNELS"
DISABLE_ENV = "DANCE_EXT_DISABLE_KERNELS"
OPS = ("siamese_augment", "class_mean_mmd")
COLUMNS = (("check", 56), ("result", 6), ("worst err", 9), ("of tol", 6), ("tolerance", 21), ("time", 8))


@dataclass
class Row:
    """One line of the table. ``status``: "pass", "fail", "skipped" or "bench" (a timing,
    which only fails when the timed code raises)."""
    check: str
    status: str
    worst_error: float | None = None   # the largest |got - want| over the check's cases
    worst_ratio: float | None = None   # the largest |got - want| / (atol + rtol·|want|); pass iff <= 1
    tolerance: str = ""
    seconds: float = 0.0
    note: str = ""
    extra: dict | None = None          # bench rows: speed-ups, shapes, wall time of the check

    def to_dict(self) -> dict:
        row = asdict(self)
        for key in ("worst_error", "worst_ratio"):
            if row[key] is not None and not math.isfinite(row[key]):
                row[key] = str(row[key])  # JSON has no inf/nan
        return row


class Skip(Exception):
    """Raised by a check that cannot run here. ``missing_kernel``: the reason is an absent
    or switched-off compiled kernel, a failure when DANCE_EXT_REQUIRE_KERNELS=1."""

    def __init__(self, reason: str, missing_kernel: bool = False):
        super().__init__(reason)
        self.missing_kernel = missing_kernel


@dataclass
class Outcome:
    """What a check returns: its worst error against a tolerance, or a plain pass."""
    worst_error: float | None = None
    worst_ratio: float | None = None
    tolerance: str = ""
    note: str = ""


@dataclass
class Timing:
    """What a benchmark returns: seconds per call (shown in the time column)."""
    seconds: float
    note: str = ""
    extra: dict | None = None


class Worst:
    """Tracks the worst element of many ``(got, want)`` comparisons under
    |got - want| <= atol + rtol·|want| (torch.testing.assert_close's rule); NaN or inf
    where the reference is finite counts as an infinite error."""

    def __init__(self, atol: float, rtol: float):
        self.atol, self.rtol = atol, rtol
        self.error, self.ratio, self.where = 0.0, 0.0, ""

    def add(self, got: torch.Tensor, want: torch.Tensor, where: str) -> None:
        got, want = got.detach().double(), want.detach().double()
        if got.shape != want.shape:
            self.error = self.ratio = math.inf
            self.where = f"{where}: shape {tuple(got.shape)} != {tuple(want.shape)}"
            return
        if got.numel() == 0:
            return
        diff = (got - want).abs()
        diff = torch.where(torch.isfinite(diff) | ~torch.isfinite(want), diff, math.inf)
        ratio = float((diff / (self.atol + self.rtol * want.abs())).max())
        error = float(diff.max())
        self.error = max(self.error, error)
        if ratio > self.ratio:
            self.ratio, self.where = ratio, where

    def outcome(self, note: str = "") -> Outcome:
        where = f"worst at {self.where}" if self.ratio > 1 else ""
        return Outcome(self.error, self.ratio, f"{self.atol:.0e} + {self.rtol:.0e}·|ref|",
                       "; ".join(s for s in (note, where) if s))


def disabled_ops() -> set[str]:
    """Ops whose kernels DANCE_EXT_DISABLE_KERNELS switches off ("all": every op)."""
    names = {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
    return set(OPS) if "all" in names else names & set(OPS)


def require_kernels() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "1"


def kernel_skip(op: str, device: torch.device) -> None:
    """Raise Skip(missing_kernel=True) unless ``dance_ext::op`` has a usable kernel on ``device``."""
    if not extension.available():
        error = (extension.LOAD_ERROR or "").splitlines()[0][:120]
        raise Skip(f"the compiled extension is not built ({error}); rebuild with "
                   "`pip install --no-build-isolation -e .`", missing_kernel=True)
    if op in disabled_ops():
        raise Skip(f"kernel switched off by {DISABLE_ENV}={os.environ[DISABLE_ENV]}", missing_kernel=True)
    if not extension.has_kernel(op, device):
        built = "with" if extension.build_info().get("with_cuda") else "without"
        raise Skip(f"this build ({built} CUDA) has no {device.type} kernel for dance_ext::{op}",
                   missing_kernel=True)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_check(name: str, check: Callable[[], Outcome | Timing | None], device: torch.device) -> Row:
    """Run one check, timing it; an exception is a failure named by its first line."""
    started = time.perf_counter()
    try:
        outcome = check() or Outcome()
        synchronize(device)
    except Skip as skip:
        seconds = time.perf_counter() - started
        if skip.missing_kernel and require_kernels():
            return Row(name, "fail", seconds=seconds, note=f"{REQUIRE_ENV}=1 but {skip}")
        return Row(name, "skipped", seconds=seconds, note=f"skipped: {skip}")
    except Exception as exc:  # noqa: BLE001 - any error of the code under test is a failed check
        message = (str(exc).strip().splitlines() or [""])[0][:200]
        return Row(name, "fail", seconds=time.perf_counter() - started, note=f"{type(exc).__name__}: {message}")
    seconds = time.perf_counter() - started
    if isinstance(outcome, Timing):
        return Row(name, "bench", seconds=outcome.seconds, note=outcome.note,
                   extra={**(outcome.extra or {}), "wall_s": seconds})
    ok = outcome.worst_ratio is None or outcome.worst_ratio <= 1.0
    return Row(name, "pass" if ok else "fail", outcome.worst_error, outcome.worst_ratio, outcome.tolerance,
               seconds, outcome.note)


# ---- the table ----------------------------------------------------------------------------
def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def header() -> str:
    line = "  ".join(f"{name:<{width}}" for name, width in COLUMNS)
    return line.rstrip() + "\n" + "-" * len(line)


def seconds_text(seconds: float) -> str:
    if seconds >= 0.01:
        return f"{seconds:.2f}s"
    return f"{seconds * 1e3:.2f}ms" if seconds >= 1e-5 else f"{seconds * 1e6:.1f}us"


def format_row(row: Row) -> str:
    result = {"pass": "pass", "fail": "FAIL", "skipped": "skip", "bench": "time"}[row.status]
    error = "" if row.worst_error is None else f"{row.worst_error:.2e}"
    ratio = "" if row.worst_ratio is None else f"{row.worst_ratio:.2f}" if row.worst_ratio < 100 else \
        f"{row.worst_ratio:.0e}"
    cells = (row.check, result, error, ratio, row.tolerance, seconds_text(row.seconds))
    line = "  ".join(f"{_cell(text, width):<{width}}" for text, (_, width) in zip(cells, COLUMNS))
    return (line + ("  " + row.note if row.note else "")).rstrip()
