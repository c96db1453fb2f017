"""Where a measurement came from: the device's model and the source tree's commit, recorded
by the benchmarks and the recipes beside their numbers."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

_SOURCE_TREE = Path(__file__).resolve().parent.parent


def device_name(device: str | torch.device = "cpu") -> str:
    """A human-readable name of the device: the GPU model, or the CPU model."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """HEAD of the source tree, with '-dirty' when tracked files have changes; 'unknown'
    outside a git checkout (e.g. an installed wheel)."""
    try:
        def git(*args):
            return subprocess.run(["git", *args], cwd=_SOURCE_TREE, capture_output=True, text=True,
                                  check=True).stdout.strip()
        head, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")
