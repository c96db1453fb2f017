"""Forward + backward of siamese_augment at DM shapes: reference eager,
torch.compile(reference) and the fused kernel.

    python -m pytest benchmarks/bench_augment.py --benchmark-only

One call augments 10 classes × (real + synthetic) images with per-class parameter
rows (DM's strategy, VICO convention) selected through an index. Mean seconds per
call and the speed-ups over reference eager go to
benchmarks/results/augment-<device>.json (conftest.save_result).

Isolation: the rungs run in the order of IMPLS, every shape of one rung before the
next, so the eager and kernel rungs are all measured before the first torch.compile
and no compilation (or what it leaves behind) overlaps their timed rounds.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import save_result
from dance_ext import augment_params as augment, reference
from dance_ext.augment_params import (ANGLE, BRIGHTNESS, CONTRAST, CUTOUT_H, CUTOUT_SIZE_H, CUTOUT_SIZE_W, CUTOUT_W, FLIP,
                               SATURATION, SCALE_H, SCALE_W, SHIFT_H, SHIFT_W, expand_params)
from dance_ext.extension import has_kernel

CLASSES = 10
# (name, C, H, W, real per class, synthetic per class)
SHAPES = [
    ("1x28x28", 1, 28, 28, 256, 10),
    ("3x32x32", 3, 32, 32, 256, 10),
    ("3x128x128", 3, 128, 128, 20, 10),
]
# measured in this order: the torch.compile rungs last
IMPLS = ("reference", "vectorized", "kernel", "compiled", "vectorized_compiled")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

_results: dict = {}
_compiled = {}


@pytest.fixture(scope="module", autouse=True)
def _save_results():
    yield
    for device, rows in _results.items():
        for shape, times in rows.items():
            if "reference" in times:
                times["speedup_vs_reference"] = {k: times["reference"] / v for k, v in times.items()
                                                 if k in IMPLS and k != "reference"}
        save_result("augment", {"device": device, "classes": CLASSES, "strategy": augment.DM_STRATEGY,
                                "convention": "vico", "seconds_per_call": rows})


def _case(shape, device):
    _, c, h, w, real, syn = shape
    gen = torch.Generator().manual_seed(0)
    per_class = real + syn
    x = torch.randn(CLASSES * per_class, c, h, w, generator=gen).to(device).requires_grad_()
    index = torch.arange(CLASSES).repeat_interleave(per_class).to(device)
    params = augment.sample_params(CLASSES, augment.DM_STRATEGY, (h, w), "vico", generator=gen, device=device)
    return x, params, index, torch.randn_like(x)


# ---- vectorized eager rewrite and torch.compile of it ----------------------------------------
# The ladder's middle rungs: reference.siamese_augment's math as a few whole-batch torch ops:
# colour as one affine per sample, flip + scale + rotate + crop as one sampling grid for all
# samples, one grid_sample, one mask (crop validity and cutout).
def vectorized_augment(x: torch.Tensor, params: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    n, _, h, w = x.shape
    p = expand_params(params, index, n).to(x.dtype)

    def col(k, *shape):
        return p[:, k].view(n, *shape)

    # brightness → saturation → contrast: y = c·s·x + c·(1−s)·mean_ch(x) + b + (1−c)·mean(x)
    # (saturation keeps the channel mean, so contrast's image mean is mean(x) + b)
    s, c, b = col(SATURATION, 1, 1, 1), col(CONTRAST, 1, 1, 1), col(BRIGHTNESS, 1, 1, 1)
    pixel_mean = x.mean(dim=1, keepdim=True)
    y = (c * s) * x + (c * (1 - s)) * pixel_mean + (b + (1 - c) * pixel_mean.mean(dim=(2, 3), keepdim=True))

    # output pixel (i, j) is the scale/rotate output at (i + shift_h, j + shift_w), which samples
    # θ·(u, v) of that pixel's centre (align_corners=False coordinates); a flip negates the x result
    i = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h)
    j = torch.arange(w, device=x.device, dtype=x.dtype).view(1, w)
    rows, cols = i + col(SHIFT_H, 1).round(), j + col(SHIFT_W, 1).round()
    v, u = ((2 * rows + 1) / h - 1).view(n, h, 1), ((2 * cols + 1) / w - 1).view(n, 1, w)
    cos, sin = torch.cos(col(ANGLE, 1, 1)), torch.sin(col(ANGLE, 1, 1))
    gx = col(SCALE_W, 1, 1) * (cos * u - sin * v)
    gy = col(SCALE_H, 1, 1) * (sin * u + cos * v)
    gx = torch.where(col(FLIP, 1, 1) > 0.5, -gx, gx)
    y = F.grid_sample(y, torch.stack([gx, gy], dim=-1), mode="bilinear", padding_mode="zeros", align_corners=False)

    def band(pos, centre, size):  # (n, L): inside the cutout box along one axis
        size = col(size, 1).round()
        start = col(centre, 1).round() - torch.div(size, 2, rounding_mode="floor")
        return (pos >= start) & (pos < start + size)

    in_image = ((rows >= 0) & (rows < h)).view(n, h, 1) & ((cols >= 0) & (cols < w)).view(n, 1, w)
    in_box = band(i, CUTOUT_H, CUTOUT_SIZE_H).view(n, h, 1) & band(j, CUTOUT_W, CUTOUT_SIZE_W).view(n, 1, w)
    return y * (in_image & ~in_box).unsqueeze(1).to(y.dtype)


def _assert_matches_reference(fn, x, params, index, grad_y):
    """fn's output and input gradient equal reference.siamese_augment's (grid_sample vs exact
    identity/integer shifts differ by float rounding only)."""
    x = x.detach().requires_grad_()
    y = fn(x, params, index)
    (gx,) = torch.autograd.grad(y, x, grad_y)
    x_ref = x.detach().requires_grad_()
    y_ref = reference.siamese_augment(x_ref, params, index)
    (gx_ref,) = torch.autograd.grad(y_ref, x_ref, grad_y)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-4, atol=1e-4)


def test_vectorized_matches_reference():
    """Self-check of the vectorized rung: sampled rows of both conventions at 1×28×28 and
    3×32×32, plus rows where every op is active at once (crop after scale/rotate)."""
    gen = torch.Generator().manual_seed(0)
    for c, h, w in ((1, 28, 28), (3, 32, 32), (3, 13, 17)):
        x = torch.randn(24, c, h, w, generator=gen)
        grad_y = torch.randn(24, c, h, w, generator=gen)
        index = torch.arange(24) % 6
        for strategy, convention in ((augment.DM_STRATEGY, "vico"), (augment.DANCE_STRATEGY, "idc"),
                                     (augment.DANCE_EVAL_STRATEGY, "idc")):
            params = augment.sample_params(6, strategy, (h, w), convention, generator=gen)
            _assert_matches_reference(vectorized_augment, x, params, index, grad_y)
        everything = torch.tensor([[1.0, 1.1, 0.9, 0.2, 2.0, -3.0, 0.3, 1.5, 0.7, 5.0, 20.0, 8.0, 6.0],
                                   [0.0, 0.85, 1.15, -0.25, -4.0, 1.0, -0.2, 0.4, 1.3, 0.0, 3.0, 9.0, 9.0]])
        _assert_matches_reference(vectorized_augment, x[:2], everything, None, grad_y[:2])


def _augment_fn(impl):
    eager = {"reference": reference.siamese_augment, "vectorized": vectorized_augment,
             "kernel": torch.ops.dance_ext.siamese_augment}
    if impl in eager:
        return eager[impl]
    if impl not in _compiled:
        source = reference.siamese_augment if impl == "compiled" else vectorized_augment
        _compiled[impl] = torch.compile(source, dynamic=False)
    return _compiled[impl]


# impl is the outermost loop (the parametrize nearest the function varies slowest)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
@pytest.mark.parametrize("impl", IMPLS)
def test_forward_backward(benchmark, impl, shape, device):
    if impl == "kernel" and not has_kernel("siamese_augment", device):
        pytest.skip(f"dance_ext::siamese_augment has no {device} kernel in this build")
    x, params, index, grad_y = _case(shape, device)
    fn = _augment_fn(impl)

    def step():
        x.grad = None
        fn(x, params, index).backward(grad_y)
        if device == "cuda":
            torch.cuda.synchronize()

    if impl.endswith("compiled"):
        try:
            step()  # compiles outside the timed rounds
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "not measurable here"
            pytest.skip(f"torch.compile({impl}) failed on this machine: {type(exc).__name__}: {exc}")
    if impl.startswith("vectorized"):
        _assert_matches_reference(fn, x, params, index, grad_y)
    benchmark.group = f"{shape[0]}-{device}"
    benchmark.pedantic(step, rounds=10, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable: the step ran once as a check
        _results.setdefault(device, {}).setdefault(shape[0], {})[impl] = benchmark.stats.stats.mean
