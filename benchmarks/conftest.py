"""Shared helpers of the benchmark suites: where results go and what they record."""
from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

import torch

from dance_ext.files import atomic_write
from dance_ext.provenance import device_name, git_commit

# DANCE_EXT_BENCH_RESULTS redirects the records (benchmarks/gpu.sh: one folder per session)
RESULTS_DIR = os.environ.get("DANCE_EXT_BENCH_RESULTS") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                         "results")


def save_result(name: str, payload: dict, device: str | torch.device | None = None) -> str:
    """Write ``payload`` with device, torch version, commit and date to
    benchmarks/results/<name>-<device>.json (or $DANCE_EXT_BENCH_RESULTS/…) atomically;
    returns the path.

    ``device`` defaults to payload["device"], else "cuda" when available, else "cpu".
    The file name uses "cpu" or the GPU model (e.g. "nvidia-h100-80gb-hbm3").
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"name: expected letters, digits, '_', '.' or '-', got {name!r}")
    if device is None:
        device = payload.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    model = device_name(device)
    tag = "cpu" if device.type == "cpu" else re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    record = {
        "name": name,
        "device": device.type,
        "device_name": model,
        "cpu_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **payload,
    }
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}-{tag}.json")
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path
