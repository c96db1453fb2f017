"""Seconds per outer iteration of DANCE and DM at CIFAR-10 shape, official-style vs ours.

    python -m pytest benchmarks/bench_iteration.py --benchmark-only
    python -m pytest benchmarks/bench_iteration.py --benchmark-disable -k self_check   # quick sanity

Problem: 10 classes, 3×32×32, 500 random uniform [0, 1] "real" images per class (a
synthetic stand-in: the cost does not depend on pixel values), ConvNet-3 width 128.
DANCE: IPC 10, factor 2 (40 decoded images per class), 128 real per class, 1 calibration
round, 5 experts (random init/trained weight pairs standing in for pretrained ones).
DM: IPC 10, 256 real per class, a fresh network every iteration.

Variants per method:
* ``official``: benchmarks/official_style.py (per-class loop, disk loads, weight grads, syncs);
* ``reference``: dance_ext's batched loop with the pure-PyTorch ops;
* ``extension``: the same loop with the fused kernels;
* ``fast``: extension + channels_last (+ bf16 autocast and TF32 on CUDA; on CPU bf16 autocast
  is slower, so it stays off there);
* ``bare`` / ``bare_fast``: only the network work of one iteration (the real batch forward
  without grad, the synthetic batch forward + backward w.r.t. the input, and for DANCE the
  expert forward + backward), in the default and in the ``fast`` network settings.

On CPU the batched loop's large activations (> 32 MB) are freshly mapped by the allocator
every iteration, and their page faults can cost as much system time as the convolutions take
user time; ``THP_MEM_ALLOC_ENABLE=1`` (huge pages for large PyTorch CPU tensors) removes most
of it. The setting, CPU user/sys seconds and page faults per iteration are recorded.

Saved with ``save_result("iteration", ...)``: seconds/iteration per variant, speed-ups over
official-style, the ratio iteration / bare network time, DANCE/DM time ratios, peak memory of
the (untimed) warmup iteration, device, threads and the load average.
"""
from __future__ import annotations

import ctypes
import gc
import os
import resource
import threading
import time
from dataclasses import dataclass

import pytest
import torch

import official_style
from conftest import save_result
from dance_ext import presets
from dance_ext.extension import has_kernel
from dance_ext.condense import AUTOCAST_DTYPES, Condenser, tf32_mode
from dance_ext.data import ClassData, as_class_data
from dance_ext.experts import ExpertPool
from dance_ext.models import build_network, flatten_parameters_, get_network, network_spec

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
CLASSES, CHANNELS, SIZE, REAL_PER_CLASS = 10, 3, 32, 500
WIDTH, DEPTH, NUM_EXPERTS = 128, 3, 5
SETTINGS = {
    "dance": {"ipc": 10, "factor": 2, "batch_real": 128, "iter_calib": 1, "num_experts": NUM_EXPERTS},
    "dm": {"ipc": 10, "batch_real": 256},
}
ON_CUDA = DEVICE.type == "cuda"
FAST = {"backend": "extension", "channels_last": True, "autocast": "bf16" if ON_CUDA else None, "tf32": ON_CUDA}
OURS = {"reference": {"backend": "reference"}, "extension": {"backend": "extension"}, "fast": FAST}
VARIANTS = ("official", "reference", "extension", "fast", "bare", "bare_fast")
ROUNDS = 3  # after one warmup iteration, which also measures peak memory

_results: dict = {"dance": {}, "dm": {}}


@dataclass
class Problem:
    data: ClassData
    pool: ExpertPool
    expert_dir: str


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    load_start = os.getloadavg()
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(CLASSES * REAL_PER_CLASS, CHANNELS, SIZE, SIZE, generator=gen)
    labels = torch.arange(CLASSES).repeat_interleave(REAL_PER_CLASS)
    data = as_class_data((images, labels), device=DEVICE)
    init, trained = official_style.random_expert_states(data, NUM_EXPERTS, WIDTH, DEPTH)
    expert_dir = str(tmp_path_factory.mktemp("official_experts"))
    official_style.write_expert_store(expert_dir, init, trained)
    # the same weights, resident as dance_ext keeps them: flat, in parameters() order
    spec = network_spec("convnet", CHANNELS, CLASSES, (SIZE, SIZE), WIDTH, DEPTH)
    names = [name for name, _ in build_network(spec).named_parameters()]
    flat = [torch.stack([torch.cat([s[n].reshape(-1) for n in names]) for s in states]) for states in (init, trained)]
    pool = ExpertPool(expert_dir, {"network": spec, "num_experts": NUM_EXPERTS}, flat[0], flat[1])
    yield Problem(data, pool, expert_dir)
    if any(_results.values()):
        _save(load_start)


def _save(load_start) -> None:
    for method, rows in _results.items():
        official = rows.get("official", {}).get("seconds_per_iteration")
        for variant, row in rows.items():
            if official and variant not in ("official", "bare", "bare_fast"):
                row["speedup_vs_official"] = official / row["seconds_per_iteration"]
            bare = rows.get("bare_fast" if variant == "fast" else "bare", {}).get("seconds_per_iteration")
            if bare and variant not in ("bare", "bare_fast"):
                row["ratio_to_bare_network"] = row["seconds_per_iteration"] / bare
    dance, dm = _results["dance"], _results["dm"]
    payload = {
        "device": DEVICE.type,
        "threads": torch.get_num_threads(),
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
        # PyTorch's CPU allocator backs large tensors with huge pages when set: far fewer page faults
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
        "problem": {"classes": CLASSES, "image": [CHANNELS, SIZE, SIZE], "real_per_class": REAL_PER_CLASS,
                    "real_data": "random uniform [0, 1] images (synthetic stand-in for CIFAR-10)",
                    "network": {"arch": "convnet", "width": WIDTH, "depth": DEPTH},
                    "experts": f"{NUM_EXPERTS} random init/trained weight pairs standing in for pretrained experts"},
        "settings": SETTINGS,
        "fast_variant": {**FAST, "note": "bf16 autocast and TF32 only on CUDA: on CPU bf16 is slower, so it is off"},
        "rounds": ROUNDS, "warmup_rounds": 1,
        "bare_network": "real batch forward without grad + synthetic batch forward/backward w.r.t. the input "
                        "(+ the expert's forward/backward for DANCE); 'ratio_to_bare_network' divides by "
                        "bare_fast for the fast variant and by bare otherwise",
        "memory": "measured during the warmup iteration: " + (
            "torch.cuda.max_memory_allocated (peak_mb) and its excess over the memory allocated before it "
            "(delta_mb)" if DEVICE.type == "cuda" else
            "peak RSS above the RSS before it (delta_mb), /proc/self/statm sampled every millisecond after gc "
            "and malloc_trim; an estimate"),
        "dance": dance,
        "dm": dm,
        "dance_dm_time_ratio": {v: dance[v]["seconds_per_iteration"] / dm[v]["seconds_per_iteration"]
                                for v in VARIANTS if v in dance and v in dm},
    }
    save_result("iteration", payload, device=DEVICE)


# ---- what one iteration is, per variant --------------------------------------------------
def _ours(method: str, variant: str, problem: Problem):
    s = SETTINGS[method]
    overrides = {"batch_real": s["batch_real"], **OURS[variant]}
    if method == "dance":
        overrides.update(factor=s["factor"], iter_calib=s["iter_calib"], num_experts=s["num_experts"])
    config = presets.resolve(method, "paper", "cifar10", s["ipc"], (SIZE, SIZE), overrides)
    generator = torch.Generator(device=DEVICE).manual_seed(0)
    condenser = Condenser(problem.data, config, generator, problem.pool if method == "dance" else None)

    def step():
        with tf32_mode(config.tf32):  # as dance_ext.condense runs its loop
            condenser.step(condenser.draw())

    return step


def _official(method: str, problem: Problem):
    s = SETTINGS[method]
    if method == "dance":
        runner = official_style.OfficialDance(problem.data, problem.expert_dir, s["num_experts"], ipc=s["ipc"],
                                              factor=s["factor"], batch_real=s["batch_real"],
                                              iter_calib=s["iter_calib"], width=WIDTH, depth=DEPTH)
    else:
        runner = official_style.OfficialDM(problem.data, ipc=s["ipc"], batch_real=s["batch_real"], width=WIDTH,
                                           depth=DEPTH)
    return runner.iteration


def _bare(method: str, fast: bool, problem: Problem):
    """The network work of one iteration on fixed inputs, networks frozen."""
    s = SETTINGS[method]
    n_syn = s["ipc"] * s.get("factor", 1) ** 2
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(CLASSES * s["batch_real"], CHANNELS, SIZE, SIZE, generator=gen).to(DEVICE)
    syn = torch.randn(CLASSES * n_syn, CHANNELS, SIZE, SIZE, generator=gen).to(DEVICE)
    nets = []
    for _ in range(2 if method == "dance" else 1):
        net = get_network("convnet", CHANNELS, CLASSES, (SIZE, SIZE), WIDTH, DEPTH).to(DEVICE)
        flatten_parameters_(net)
        nets.append(net)
    layout = torch.channels_last if fast and FAST["channels_last"] else torch.contiguous_format
    autocast = AUTOCAST_DTYPES[FAST["autocast"]] if fast else None

    def run(net, x, features):
        with torch.autocast(DEVICE.type, dtype=autocast, enabled=autocast is not None):
            out = net.embed(x) if features else net(x)
        return out.float()

    def step():
        with tf32_mode(fast and FAST["tf32"]):
            with torch.no_grad():
                run(nets[0], real.contiguous(memory_format=layout), True)
            x = syn.contiguous(memory_format=layout).requires_grad_(True)
            f = run(nets[0], x, True)
            torch.autograd.grad(f, x, torch.ones_like(f))
            if method == "dance":
                x = syn.contiguous(memory_format=layout).requires_grad_(True)
                logits = run(nets[1], x, False)
                torch.autograd.grad(logits, x, torch.ones_like(logits))

    return step


def _synchronized(fn):
    def call():
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
    return call


# ---- peak memory of one iteration -------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_memory(step) -> dict:
    gc.collect()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        peak = torch.cuda.max_memory_allocated()
        return {"peak_mb": peak / 2**20, "delta_mb": (peak - before) / 2**20}
    try:  # return freed heap pages to the OS so the baseline is not inflated by the allocator's cache
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    before = peak = _rss_bytes()
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        step()
    finally:
        done.set()
        sampler.join()
    peak = max(peak, _rss_bytes())
    return {"delta_mb": (peak - before) / 2**20, "rss_before_mb": before / 2**20}


# ---- the benchmarks ---------------------------------------------------------------------------
def test_official_style_self_check(tmp_path):
    """The baseline is plausible: finite losses, images change, weight gradients computed."""
    official_style.self_check(str(tmp_path), device=DEVICE)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("method", ("dance", "dm"))
def test_iteration(benchmark, request, method, variant):
    if benchmark.disabled:
        pytest.skip("timing disabled (--benchmark-disable)")
    if variant in ("extension", "fast") and not all(has_kernel(op, DEVICE) for op in ("siamese_augment",
                                                                                        "class_mean_mmd")):
        pytest.skip(f"dance_ext has no {DEVICE.type} kernels in this build")
    problem = request.getfixturevalue("problem")  # built only when something is timed
    if variant == "official":
        step = _official(method, problem)
    elif variant.startswith("bare"):
        step = _bare(method, variant == "bare_fast", problem)
    else:
        step = _ours(method, variant, problem)
    step = _synchronized(step)
    benchmark.group = f"{method}-{DEVICE.type}"
    benchmark.extra_info.update(method=method, variant=variant, device=DEVICE.type, threads=torch.get_num_threads())
    memory = _peak_memory(step)  # the warmup iteration (an extra one would cost a minute on CPU)
    before = resource.getrusage(resource.RUSAGE_SELF)
    benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=0)
    after = resource.getrusage(resource.RUSAGE_SELF)
    stats = benchmark.stats.stats
    _results[method][variant] = {
        "seconds_per_iteration": stats.mean, "min_s": stats.min, "stddev_s": stats.stddev, "rounds": stats.rounds,
        "peak_memory": memory,
        # process CPU time per iteration: on CPU, sys time is mostly page faults of freshly mapped large tensors
        "cpu_user_s": (after.ru_utime - before.ru_utime) / ROUNDS,
        "cpu_sys_s": (after.ru_stime - before.ru_stime) / ROUNDS,
        "minor_page_faults": (after.ru_minflt - before.ru_minflt) // ROUNDS,
    }
