"""Python face of the custom ops: one argument pass shared by both backends, then routing to the
compiled extension when it provides the op, else to the pure-PyTorch oracle.

Both backends accept the same inputs, give the same values on them, and refuse the rest with the
same error class and message (tests/test_backend_agreement.py):

* everything that needs no tensor values (types, shapes, dtypes, devices, ``num_classes``, the
  gradient policy) is checked here, before dispatch, for both backends;
* values (index range, label range, empty classes) are checked where they are read: by the
  kernels (csrc/checks, ValueError) on the extension path, and by the same check here, in the same
  words, on the reference path. Under torch.compile the reference path skips them (a value check
  would break the graph); the kernels still check.

Gradients: ``siamese_augment`` gives none for ``params``, ``class_mean_mmd`` none for ``f_real``.
Such a tensor that requires grad (with grad mode on) is refused, so no gradient goes missing silently.
"""
from __future__ import annotations

import torch

from . import _augment_op, _mmd_op, reference  # noqa: F401  (the _op modules register fake kernels and autograd)
from .extension import DISABLE_ENV, DISABLED, has_kernel
from .augment_params import NUM_PARAMS
from .checks import describe, is_int

BACKENDS = ("auto", "extension", "reference")


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")


KERNEL_DTYPES = (torch.float32, torch.float64)


def _use_reference(backend: str, op: str, device: torch.device, dtype: torch.dtype) -> bool:
    if backend == "reference":
        return True
    if has_kernel(op, device) and dtype in KERNEL_DTYPES:
        return False
    if backend == "extension":
        if op in DISABLED:
            raise RuntimeError(f"backend='extension': dance_ext::{op} is switched off by {DISABLE_ENV} "
                               f"(read when dance_ext was imported)")
        raise RuntimeError(f"backend='extension': dance_ext::{op} has no {device.type} kernel for {dtype} in "
                           f"this build ({_describe_build()})")
    return True


def _describe_build() -> str:
    from .extension import build_info
    return ", ".join(f"{k}={v}" for k, v in build_info().items())


def _check_no_grad(t: torch.Tensor, name: str, op: str, why: str) -> None:
    if t.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"{name}: requires grad, but {op} gives no gradient for {name} ({why}); "
                         f"pass {name}.detach()")


def _values_checked_here(t: torch.Tensor) -> bool:
    """Whether the reference path reads ``t``'s values for its checks: not while torch.compile
    traces (a value check would break the graph), and a meta tensor has none."""
    return not torch.compiler.is_compiling() and t.device.type != "meta"


def _check_augment_args(x: torch.Tensor, params: torch.Tensor, index: torch.Tensor | None) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x: expected a 4-D (N, C, H, W) tensor, got {describe(x)}")
    if not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
    if not isinstance(params, torch.Tensor) or params.dim() != 2 or params.shape[1] != NUM_PARAMS:
        raise ValueError(f"params: expected a (P, {NUM_PARAMS}) tensor, got {describe(params)}")
    if not params.is_floating_point():
        raise TypeError(f"params: expected a floating-point tensor, got dtype {params.dtype}")
    if params.device != x.device:
        raise ValueError(f"params: expected device {x.device} (the device of x), got {params.device}")
    _check_no_grad(params, "params", "siamese_augment", "its rows are data, like DSA's random draws")
    n, p = x.shape[0], params.shape[0]
    if index is None:
        if p not in (1, n):
            raise ValueError(f"params: without index expected 1 or N={n} rows, got {p}")
        return
    if not isinstance(index, torch.Tensor) or index.dtype != torch.int64 or index.shape != (n,):
        raise ValueError(f"index: expected an int64 tensor of shape ({n},), got {describe(index)}")
    if index.device != x.device:
        raise ValueError(f"index: expected device {x.device} (the device of x), got {index.device}")
    if n > 0 and p == 0:
        raise ValueError(f"params: expected at least one row for {n} samples, got 0")


def _check_index_values(index: torch.Tensor, rows: int) -> None:
    """The kernels' check (csrc/checks/augment_checks.cpp check_index_range), in its words."""
    bad = ((index < 0) | (index >= rows)).nonzero()
    if bad.numel():
        i = int(bad[0, 0])
        raise ValueError(f"siamese_augment: index: expected values in [0, {rows}) (rows of params), got "
                         f"{int(index[i])} at position {i}")


def siamese_augment(x: torch.Tensor, params: torch.Tensor, index: torch.Tensor | None = None,
                    backend: str = "auto") -> torch.Tensor:
    """Augment ``x`` (N, C, H, W) with parameter rows ``params`` (P, 13); sample i uses
    row ``index[i]`` (or row i when P == N, or row 0 when P == 1). Differentiable in x only."""
    _check_backend(backend)
    _check_augment_args(x, params, index)
    params = params.to(x.dtype)
    if _use_reference(backend, "siamese_augment", x.device, x.dtype):
        if index is not None and _values_checked_here(index):
            _check_index_values(index, params.shape[0])
        return reference.siamese_augment(x, params, index)
    return torch.ops.dance_ext.siamese_augment(x, params, index)


def class_mean_mmd(f_real: torch.Tensor, f_syn: torch.Tensor, real_labels: torch.Tensor | None = None,
                   syn_labels: torch.Tensor | None = None, num_classes: int | None = None,
                   reduction: str = "sum", backend: str = "auto") -> torch.Tensor:
    """Σ over classes of the squared distance between per-class mean features.

    Class-major (C, n_real, D) and (C, n_syn, D) inputs, or 2-D (n, D) inputs with
    label vectors and ``num_classes``. ``reduction``: "sum", "mean" or "none" (the (C,)
    vector). Differentiable in ``f_syn`` only."""
    _check_backend(backend)
    if reduction not in ("sum", "mean", "none"):
        raise ValueError(f"reduction: expected 'sum', 'mean' or 'none', got {reduction!r}")
    num_classes = _check_mmd_args(f_real, f_syn, real_labels, syn_labels, num_classes)
    if _use_reference(backend, "class_mean_mmd", f_syn.device, f_syn.dtype):
        if real_labels is not None and _values_checked_here(real_labels):
            _check_label_values(real_labels, "real_labels", num_classes)
            _check_label_values(syn_labels, "syn_labels", num_classes)
        return reference.class_mean_mmd(f_real, f_syn, real_labels, syn_labels, num_classes, reduction)
    per_class, _ = torch.ops.dance_ext.class_mean_mmd(f_real, f_syn, real_labels, syn_labels, num_classes)
    if reduction == "none":
        return per_class
    return per_class.mean() if reduction == "mean" else per_class.sum()


def _check_mmd_args(f_real, f_syn, real_labels, syn_labels, num_classes) -> int:
    """Every check that needs no values; returns the number of classes."""
    for name, f in (("f_real", f_real), ("f_syn", f_syn)):
        if not isinstance(f, torch.Tensor) or not f.is_floating_point() or f.dim() not in (2, 3):
            raise ValueError(f"{name}: expected a floating-point 2-D or 3-D tensor, got {describe(f)}")
    if f_real.dim() != f_syn.dim():
        raise ValueError(f"f_syn: expected {f_real.dim()} dims like f_real, got {f_syn.dim()}")
    if f_real.shape[-1] != f_syn.shape[-1]:
        raise ValueError(f"f_syn: expected feature dimension D={f_real.shape[-1]} like f_real, got {f_syn.shape[-1]}")
    if f_real.device != f_syn.device:
        raise ValueError(f"f_syn: expected device {f_real.device} like f_real, got {f_syn.device}")
    if f_real.dtype != f_syn.dtype:
        raise TypeError(f"f_syn: expected dtype {f_real.dtype} like f_real, got {f_syn.dtype}")
    _check_no_grad(f_real, "f_real", "class_mean_mmd", "the real side is a fixed target")
    if f_real.dim() == 3:
        return _check_class_major(f_real, f_syn, real_labels, syn_labels, num_classes)
    if not is_int(num_classes) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int with 2-D features, got {num_classes!r}")
    for name, labels, f in (("real_labels", real_labels, f_real), ("syn_labels", syn_labels, f_syn)):
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != (f.shape[0],):
            raise ValueError(f"{name}: expected an int64 tensor of shape ({f.shape[0]},), got {describe(labels)}")
        if labels.device != f.device:
            raise ValueError(f"{name}: expected device {f.device} like the features, got {labels.device}")
    return int(num_classes)


def _check_class_major(f_real, f_syn, real_labels, syn_labels, num_classes) -> int:
    classes = f_real.shape[0]
    if f_syn.shape[0] != classes:
        raise ValueError(f"f_syn: expected C={classes} classes like f_real, got {f_syn.shape[0]}")
    if f_real.shape[1] == 0 or f_syn.shape[1] == 0:
        raise ValueError("f_real, f_syn: every class needs at least one sample")
    for name, labels in (("real_labels", real_labels), ("syn_labels", syn_labels)):
        if labels is not None:
            raise ValueError(f"{name}: expected None with class-major 3-D features, got {describe(labels)}")
    if num_classes is not None and (not is_int(num_classes) or num_classes != classes):
        raise ValueError(f"num_classes: expected None or {classes} (dim 0 of f_real) with 3-D features, "
                         f"got {num_classes!r}")
    return classes


def _check_label_values(labels: torch.Tensor, name: str, num_classes: int) -> None:
    """The kernels' check (csrc/checks/mmd_checks.cpp mmd_label_offsets), in its words."""
    bad = ((labels < 0) | (labels >= num_classes)).nonzero()
    if bad.numel():
        i = int(bad[0, 0])
        raise ValueError(f"{name}: expected labels in [0, {num_classes}), got {int(labels[i])} at index {i}")
    empty = (torch.bincount(labels, minlength=num_classes) == 0).nonzero()
    if empty.numel():
        raise ValueError(f"{name}: class {int(empty[0, 0])} has no sample; every class in [0, {num_classes}) "
                         "needs at least one")
