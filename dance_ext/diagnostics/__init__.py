"""``dance_ext.selftest()`` / ``dance-ext selftest``: is this installation correct on this
device? Every op and backend the device has is compared with the pure-PyTorch reference
ops (forward and backward over a grid of random inputs), gradchecked in float64 and
opchecked; one DM and one DANCE iteration with the kernels must equal the same iterations
with the reference ops; ``bench=True`` adds indicative timings. Rows print as they finish.

Layout: ``core`` (rows, tolerances, skips, the table), ``op_checks``, ``loop_checks``,
``bench``. Where the extension is not built or the device has no kernel, rows say
"skipped: reason"; with DANCE_EXT_REQUIRE_KERNELS=1 those rows fail instead.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import torch

from .. import utils
from .core import DISABLE_ENV, REQUIRE_ENV, Row, format_row, header, run_check

__all__ = ["selftest", "Report", "Row", "resolve_device"]


@dataclass
class Report:
    rows: list[Row]
    info: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**self.info, "ok": self.ok, "seconds": self.seconds,
                "failures": [r.check for r in self.failures], "rows": [r.to_dict() for r in self.rows]}


def resolve_device(device=None) -> torch.device:
    """cpu, cuda or cuda:N (default: cuda when there is one): the devices with kernels."""
    if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: no CUDA device here (torch {torch.__version__}); run `dance-ext selftest "
                         "--device cpu`")
    device = utils.resolve_device(device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {str(device)!r}")
    return device


def environment(device: torch.device) -> dict:
    """Device, torch, CUDA, dance_ext version and commit (dance_ext.provenance), build facts."""
    from .. import __version__, build_info
    from ..provenance import device_name, git_commit
    return {
        "device": str(device), "device_name": device_name(device), "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda, "cudnn_version": torch.backends.cudnn.version(),
        "dance_ext_version": __version__, "git_commit": git_commit(), "build": build_info(),
        "python": platform.python_version(), "cpu_threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in (DISABLE_ENV, REQUIRE_ENV)},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def all_checks(device: torch.device, quick: bool, bench: bool, compile: bool) -> list:
    from . import bench as bench_checks, loop_checks, op_checks
    out = op_checks.checks(device, quick)
    out += [(f"{m.upper()} iteration extension vs reference", lambda m=m: loop_checks.iteration_parity(m, device))
            for m in ("dm", "dance")]
    if bench:
        out += bench_checks.checks(device, compile)
    return out


def selftest(device=None, *, bench: bool = False, quick: bool = False, compile: bool = False,
             json_path: str | os.PathLike | None = None, stream: TextIO | None = None,
             verbose: bool = True) -> Report:
    """Run the checks on ``device``, print the table to ``stream`` (default: sys.stdout;
    nothing with verbose=False), write ``json_path`` if given; the Report's ``ok`` is False
    when any check failed."""
    device = resolve_device(device)
    info = environment(device)

    def say(text: str) -> None:
        if verbose:
            print(text, file=stream or sys.stdout, flush=True)

    build = info["build"]
    say(f"dance_ext {info['dance_ext_version']} self-test on {device} ({info['device_name']}); torch "
        f"{info['torch_version']}, CUDA {info['cuda_version']}, extension "
        f"{'loaded' if build.get('loaded') else 'NOT built'}, commit {info['git_commit'][:12]}")
    say("parity rows: kernel (backend='extension') vs reference ops on the same inputs; "
        "worst err = max |kernel - reference|")
    say(header())
    started = time.perf_counter()
    rows = []
    for name, check in all_checks(device, quick, bench, compile):
        rows.append(run_check(name, check, device))
        say(format_row(rows[-1]))
    report = Report(rows, {**info, "options": {"bench": bench, "quick": quick, "compile": compile}},
                    time.perf_counter() - started)
    say(summary(report))
    if json_path is not None:
        write_json(report, json_path)
    return report


def summary(report: Report) -> str:
    counts = {s: sum(r.status == s for r in report.rows) for s in ("pass", "fail", "skipped", "bench")}
    text = (f"selftest: {counts['pass']} passed, {counts['fail']} failed, {counts['skipped']} skipped"
            + (f", {counts['bench']} timings" if counts["bench"] else "") + f" in {report.seconds:.1f} s")
    if report.failures:
        text += "\nFAILED: " + "; ".join(r.check for r in report.failures)
        text += ("\nsee README.md 'Check your installation' (DANCE_EXT_DISABLE_KERNELS=all or "
                 "backend='reference' runs the reference ops; rebuild; report the --json file)")
    return text


def write_json(report: Report, path) -> None:
    from ..files import atomic_write
    text = json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))
