"""Loads the compiled extension dance_ext._C (which registers the ops) if it was built."""
from __future__ import annotations

import os
import warnings

import torch

try:
    from . import _C
    LOAD_ERROR: str | None = None
except ImportError as exc:  # not built, or built for another torch: said at first use (has_kernel)
    _C = None
    LOAD_ERROR = str(exc)


REBUILD = "pip install --no-build-isolation -e ."
_explained = False


def _load_problem() -> str:
    """LOAD_ERROR as a cause and its fix, in one line."""
    if "No module named" in LOAD_ERROR:
        cause = "it is not built"
    elif "undefined symbol" in LOAD_ERROR:
        cause = f"it was built against another torch than this {torch.__version__} ({LOAD_ERROR})"
    else:
        cause = f"it did not load ({LOAD_ERROR})"
    return (f"dance_ext: the compiled ops (dance_ext._C) are unavailable: {cause}; the slow PyTorch "
            f"reference ops run instead. Fix: rebuild in the source folder with `{REBUILD}`")


def _explain_missing_kernels() -> None:
    """At the first op that wanted a kernel: one warning, or with DANCE_EXT_REQUIRE_KERNELS=1 an
    error (every time), saying why the extension is missing and how to rebuild it."""
    global _explained
    if os.environ.get("DANCE_EXT_REQUIRE_KERNELS") == "1":
        raise RuntimeError(_load_problem() + " (DANCE_EXT_REQUIRE_KERNELS=1 makes this an error)")
    if not _explained:
        _explained = True
        warnings.warn(_load_problem(), RuntimeWarning, stacklevel=3)


def available() -> bool:
    return _C is not None


def build_info() -> dict:
    """Facts of the build: whether it loaded, CUDA kernels compiled in, OpenMP threads."""
    if _C is None:
        return {"loaded": False, "error": LOAD_ERROR}
    return {"loaded": True, "with_cuda": _C.with_cuda(), "openmp_threads": _C.openmp_threads(),
            "torch_version": _C.torch_version}


# the answer is fixed for a process, and dynamo cannot trace the dispatcher query
@torch.compiler.assume_constant_result
def has_kernel(op: str, device: torch.device | str) -> bool:
    """Whether ``dance_ext::op`` has a kernel registered for the device's dispatch key."""
    if _C is None:
        _explain_missing_kernels()
        return False
    key = "CUDA" if torch.device(device).type == "cuda" else "CPU"
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(f"dance_ext::{op}", key)
    except RuntimeError:
        return False
