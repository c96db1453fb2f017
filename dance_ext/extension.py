"""Loads the compiled extension dance_ext._C (which registers the ops) if it was built, and
answers which ops run on its kernels (``has_kernel``).

``DANCE_EXT_DISABLE_KERNELS`` is a kill switch: a comma list of op names
(``siamese_augment``, ``class_mean_mmd``), or ``all`` / ``1`` for every op, whose calls then run
on the pure-PyTorch reference ops as if the extension had no kernel for them (``0`` or empty:
none). It is read once, when dance_ext is imported: set it before the import (or in the
environment of the process).
"""
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

DISABLE_ENV = "DANCE_EXT_DISABLE_KERNELS"
# the ops that ops.py routes through has_kernel (their backward ops follow them)
OPS = ("siamese_augment", "class_mean_mmd")
# the only device types with kernels: any other (mps, xpu, meta, ...) runs the reference ops
_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}


def _parse_disabled(value: str | None) -> frozenset[str]:
    """The op names a DANCE_EXT_DISABLE_KERNELS value switches off."""
    names = {name.strip().lower() for name in (value or "").split(",")} - {"", "0"}
    if names & {"all", "1"}:
        return frozenset(OPS)
    unknown = sorted(names - set(OPS))
    if unknown:
        warnings.warn(f"{DISABLE_ENV}: unknown op name(s) {', '.join(unknown)} ignored; expected a comma list of "
                      f"{', '.join(OPS)}, or 'all'", RuntimeWarning, stacklevel=2)
    return frozenset(names & set(OPS))


DISABLED: frozenset[str] = _parse_disabled(os.environ.get(DISABLE_ENV))


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
    """Facts of the build: whether it loaded, CUDA kernels compiled in, OpenMP threads, and the
    ops switched off by DANCE_EXT_DISABLE_KERNELS."""
    disabled = {"disabled_kernels": sorted(DISABLED)} if DISABLED else {}
    if _C is None:
        return {"loaded": False, "error": LOAD_ERROR, **disabled}
    return {"loaded": True, "with_cuda": _C.with_cuda(), "openmp_threads": _C.openmp_threads(),
            "torch_version": _C.torch_version, **disabled}


# the answer is fixed for a process, and dynamo cannot trace the dispatcher query
@torch.compiler.assume_constant_result
def has_kernel(op: str, device: torch.device | str) -> bool:
    """Whether ``dance_ext::op`` runs on the extension's kernel for tensors on ``device``: the
    extension is loaded, the op is not switched off by DANCE_EXT_DISABLE_KERNELS, the device
    type is cpu or cuda, and a kernel is registered for its dispatch key."""
    if _C is None:
        _explain_missing_kernels()
        return False
    if op in DISABLED:
        return False
    key = _DISPATCH_KEYS.get(torch.device(device).type)
    if key is None:
        return False
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(f"dance_ext::{op}", key)
    except RuntimeError:
        return False
