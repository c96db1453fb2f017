"""Forward + backward of siamese_augment at DM shapes: reference eager,
torch.compile(reference) and the fused kernel.

    python -m pytest benchmarks/bench_augment.py --benchmark-only

One call augments 10 classes × (real + synthetic) images with per-class parameter
rows (DM's strategy, VICO convention) selected through an index. Mean seconds per
call and the speed-ups over reference eager go to
benchmarks/results/augment-<device>.json (conftest.save_result).
"""
from __future__ import annotations

import pytest
import torch

from conftest import save_result
from dance_ext import augment, reference
from dance_ext._extension import has_kernel

CLASSES = 10
# (name, C, H, W, real per class, synthetic per class)
SHAPES = [
    ("1x28x28", 1, 28, 28, 256, 10),
    ("3x32x32", 3, 32, 32, 256, 10),
    ("3x128x128", 3, 128, 128, 20, 10),
]
IMPLS = ("reference", "compiled", "kernel")
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


def _augment_fn(impl):
    if impl == "reference":
        return reference.siamese_augment
    if impl == "kernel":
        return torch.ops.dance_ext.siamese_augment
    if "fn" not in _compiled:
        _compiled["fn"] = torch.compile(reference.siamese_augment, dynamic=False)
    return _compiled["fn"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_forward_backward(benchmark, shape, impl, device):
    if impl == "kernel" and not has_kernel("siamese_augment", device):
        pytest.skip(f"dance_ext::siamese_augment has no {device} kernel in this build")
    x, params, index, grad_y = _case(shape, device)
    fn = _augment_fn(impl)

    def step():
        x.grad = None
        fn(x, params, index).backward(grad_y)
        if device == "cuda":
            torch.cuda.synchronize()

    if impl == "compiled":
        try:
            step()  # compiles outside the timed rounds
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "not measurable here"
            pytest.skip(f"torch.compile(reference) failed on this machine: {type(exc).__name__}: {exc}")
    benchmark.group = f"{shape[0]}-{device}"
    benchmark.pedantic(step, rounds=3, warmup_rounds=1)
    _results.setdefault(device, {}).setdefault(shape[0], {})[impl] = benchmark.stats.stats.mean
