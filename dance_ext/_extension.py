"""Loads the compiled extension dance_ext._C (which registers the ops) if it was built."""
from __future__ import annotations

import torch

try:
    from . import _C
    LOAD_ERROR: str | None = None
except ImportError as exc:  # a source checkout without a build: reference ops still work
    _C = None
    LOAD_ERROR = str(exc)


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
        return False
    key = "CUDA" if torch.device(device).type == "cuda" else "CPU"
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(f"dance_ext::{op}", key)
    except RuntimeError:
        return False
