"""``--bench``: the op ladders (reference eager, optionally torch.compile of it, the
kernel) and one DM and one DANCE iteration at CIFAR-10 shape, in seconds. Indicative
timings (median of a few calls after one warmup); benchmarks/ holds the full suites."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from .. import augment_params as augment, ops, reference
from .core import Skip, Timing, kernel_skip, synchronize
from .loop_checks import condenser, random_data, random_pool

CLASSES = 10
# (name, C, H, W, real per class, synthetic per class): DM's augmentation calls
AUGMENT_SHAPES = (("3x32x32", 3, 32, 32, 256, 10), ("3x128x128", 3, 128, 128, 20, 10))
MMD_CLASSES, MMD_DIM, MMD_REAL, MMD_SYN = (10, 100), 2048, 256, 10
CIFAR = dict(classes=10, per_class=260, channels=3, size=32, width=128, depth=3, ipc=10)
ITERATION_SETTINGS = {"dm": dict(batch_real=256), "dance": dict(batch_real=128, factor=2, iter_calib=1)}


def median_seconds(fn: Callable[[], object], device, reps: int) -> float:
    fn()  # warmup (and compilation)
    synchronize(device)
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _rung(impl: str, eager: Callable, step_of: Callable, device, reps: int, ladder: dict, key: str) -> Timing:
    """Time one rung of a ladder (``step_of(None)`` is the kernel's step); the kernel rung
    reports its speed-ups over the rungs measured before it."""
    fn = None if impl == "kernel" else torch.compile(eager, dynamic=False) if impl == "compiled" else eager
    step = step_of(fn)
    started = time.perf_counter()
    try:
        seconds = median_seconds(step, device, reps)
    except Exception as exc:  # noqa: BLE001 - a compiler failure is "not measurable here"
        if impl == "compiled":
            raise Skip(f"torch.compile failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}") from exc
        raise
    ladder.setdefault(key, {})[impl] = seconds
    extra = {"impl": impl, "case": key, "reps": reps, "wall_with_warmup_s": time.perf_counter() - started}
    note = ""
    if impl == "kernel":
        speedups = {k: v / seconds for k, v in ladder[key].items() if k != "kernel"}
        extra["speedup"] = speedups
        note = "speed-up " + ", ".join(f"{s:.1f}x vs {k}" for k, s in speedups.items())
    return Timing(seconds, note, extra)


def _runnable(impl: str, kernel_op: str, device, compile_ok: bool) -> None:
    if impl == "kernel":
        kernel_skip(kernel_op, device)
    if impl == "compiled" and not compile_ok:
        raise Skip("torch.compile rung not requested (--compile)")


def augment_ladder(shape, impl: str, device, reps: int, ladder: dict, compile_ok: bool) -> Timing:
    _runnable(impl, "siamese_augment", device, compile_ok)
    name, c, h, w, real, syn = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(CLASSES * (real + syn), c, h, w, generator=gen).to(device).requires_grad_()
    index = torch.arange(CLASSES).repeat_interleave(real + syn).to(device)
    params = augment.sample_params(CLASSES, augment.DM_STRATEGY, (h, w), "vico", generator=gen).to(device)
    grad_y = torch.randn_like(x)

    def step_of(fn):
        def step():
            y = (ops.siamese_augment(x, params, index, backend="extension") if fn is None
                 else fn(x, params, index))
            torch.autograd.grad(y, x, grad_y)
        return step
    return _rung(impl, reference.siamese_augment, step_of, device, reps, ladder, f"augment {name}")


def loop_loss(f_real, f_syn):
    loss = f_syn.new_zeros(())
    for real_c, syn_c in zip(f_real.unbind(0), f_syn.unbind(0)):
        loss = loss + (real_c.mean(0) - syn_c.mean(0)).pow(2).sum()
    return loss


def vectorized_loss(f_real, f_syn):
    return (f_real.mean(1) - f_syn.mean(1)).pow(2).sum()


def mmd_ladder(classes: int, impl: str, device, reps: int, ladder: dict, compile_ok: bool) -> Timing:
    _runnable(impl, "class_mean_mmd", device, compile_ok)
    gen = torch.Generator().manual_seed(0)
    f_real = torch.randn(classes, MMD_REAL, MMD_DIM, generator=gen).to(device)
    f_syn = torch.randn(classes, MMD_SYN, MMD_DIM, generator=gen).to(device).requires_grad_()
    eager = loop_loss if impl == "loop" else vectorized_loss

    def step_of(fn):
        def step():
            loss = ops.class_mean_mmd(f_real, f_syn, backend="extension") if fn is None else fn(f_real, f_syn)
            torch.autograd.grad(loss, f_syn)
        return step
    return _rung(impl, eager, step_of, device, reps, ladder, f"mmd C={classes}")


def iteration(method: str, device, reps: int, ladder: dict) -> Timing:
    t = CIFAR
    data = random_data(t["classes"], t["per_class"], t["channels"], t["size"], device)
    pool = random_pool(data, t["width"], t["depth"], 5) if method == "dance" else None
    cond = condenser(method, data, pool, "auto", ipc=t["ipc"], width=t["width"], depth=t["depth"],
                     **ITERATION_SETTINGS[method])
    seconds = median_seconds(lambda: cond.step(cond.draw()), device, reps)
    ladder.setdefault("iteration", {})[method] = seconds
    kernels = all(ops._use_reference("auto", op, device, torch.float32) is False
                  for op in ("siamese_augment", "class_mean_mmd"))
    note = f"backend auto ({'kernels' if kernels else 'reference ops'})"
    if method == "dance" and "dm" in ladder["iteration"]:
        note += f", DANCE/DM {seconds / ladder['iteration']['dm']:.2f}"
    return Timing(seconds, note, {"method": method, "reps": reps, "kernels": kernels, **t,
                                  **ITERATION_SETTINGS[method]})


def checks(device: torch.device, compile_ok: bool) -> list[tuple[str, Callable[[], Timing]]]:
    on_cuda = device.type == "cuda"
    op_reps, iter_reps = (20, 5) if on_cuda else (3, 1)
    ladder: dict = {}
    out = []
    for shape in AUGMENT_SHAPES:
        for impl in ("reference", "compiled", "kernel"):
            out.append((f"bench augment fwd+bwd {CLASSES * (shape[4] + shape[5])}x{shape[0]}: {impl}",
                        lambda s=shape, i=impl: augment_ladder(s, i, device, op_reps, ladder, compile_ok)))
    for classes in MMD_CLASSES:
        for impl in ("loop", "compiled", "kernel"):
            out.append((f"bench class_mean_mmd fwd+bwd C={classes} D={MMD_DIM}: {impl}",
                        lambda c=classes, i=impl: mmd_ladder(c, i, device, op_reps, ladder, compile_ok)))
    for method in ("dm", "dance"):
        out.append((f"bench {method.upper()} iteration CIFAR-10 shape, ipc 10",
                    lambda m=method: iteration(m, device, iter_reps, ladder)))
    return out
