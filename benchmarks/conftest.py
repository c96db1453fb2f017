"""Shared helpers of the benchmark suites: where results go and what they record."""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
from pathlib import Path

import torch

from dance_ext._files import atomic_write

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def device_name(device: str | torch.device = "cpu") -> str:
    """A human-readable name of the device: the GPU model, or the CPU model."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """HEAD of the checkout, with '-dirty' when tracked files have changes; 'unknown' outside git."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def save_result(name: str, payload: dict, device: str | torch.device | None = None) -> str:
    """Write ``payload`` with device, torch version, commit and date to
    benchmarks/results/<name>-<device>.json atomically; returns the path.

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
