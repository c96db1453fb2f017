"""Scaling of ``condense(..., distributed=True)`` with the number of processes.

    python -m pytest benchmarks/bench_scaling.py --benchmark-only

Each world size is one ``torchrun --standalone`` launch of this file as a worker; the
threads are split between ranks (2 cores: world 1 × 2 threads, world 2 × 1 thread), so on
one CPU this measures how well class slices use the same cores, not more hardware. On a
GPU machine all ranks share the one GPU (NCCL), which is said in the saved record.

Problem: CIFAR-10 shape (10 classes, 3×32×32, 500 random uniform "real" images per class:
the cost does not depend on pixel values), ConvNet-3 width 128, IPC 10; DM with 256 real
images per class; DANCE with factor 2, 128 real per class, 1 calibration round and 5
random init/trained weight pairs standing in for pretrained experts.

Recorded per (method, world size): seconds per iteration (the loop's own time divided by
the iterations, from meta["seconds"]), the total wall time of the launch (process start,
imports, data, gather) and the speed-up over world size 1.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

CLASSES, CHANNELS, SIZE, REAL_PER_CLASS = 10, 3, 32, 500
WIDTH, DEPTH, NUM_EXPERTS, IPC = 128, 3, 5, 10
ITERATIONS = {"dm": 6, "dance": 4}
SETTINGS = {"dm": {"batch_real": 256}, "dance": {"batch_real": 128, "factor": 2, "iter_calib": 1,
                                                 "num_experts": NUM_EXPERTS}}
WORLD_SIZES = (1, 2)
_results: dict = {}


def _worker(method: str, out: str) -> None:
    """One rank: condense the stand-in problem and (rank 0) write the timings."""
    import dance_ext
    from dance_ext.experts import ExpertPool
    from dance_ext.models import build_network, network_spec

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(CLASSES * REAL_PER_CLASS, CHANNELS, SIZE, SIZE, generator=gen)
    labels = torch.arange(CLASSES).repeat_interleave(REAL_PER_CLASS)
    experts = None
    if method == "dance":
        spec = network_spec("convnet", CHANNELS, CLASSES, (SIZE, SIZE), WIDTH, DEPTH)
        torch.manual_seed(0)  # the same stand-in experts on every rank
        flat = [torch.stack([torch.cat([p.detach().reshape(-1) for p in build_network(spec).parameters()])
                             for _ in range(NUM_EXPERTS)]) for _ in range(2)]
        manifest = {"network": spec, "channels": CHANNELS, "num_classes": CLASSES, "image_size": [SIZE, SIZE]}
        experts = ExpertPool(None, manifest, flat[0].to(device), flat[1].to(device))
    started = time.perf_counter()
    result = dance_ext.condense((images, labels), ipc=IPC, method=method, experts=experts, preset="paper",
                                iterations=ITERATIONS[method], width=WIDTH, depth=DEPTH, device=device,
                                distributed=True, progress=False, log_every=ITERATIONS[method],
                                **SETTINGS[method])
    if int(os.environ["RANK"]) == 0:
        Path(out).write_text(json.dumps({
            "seconds_per_iteration": result.meta["seconds"] / ITERATIONS[method],
            "condense_seconds": time.perf_counter() - started, "class_block": result.meta["class_block_used"],
            "threads_per_rank": torch.get_num_threads(), "device": device.type}))


def _launch(method: str, world: int, tmp_path) -> dict:
    cores = os.cpu_count() or 1
    out = tmp_path / f"{method}-{world}.json"
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // world)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}",
           os.path.abspath(__file__), "--worker", method, str(out)]
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=1800)
    row = json.loads(out.read_text())
    row["launch_wall_seconds"] = time.perf_counter() - started
    return row


@pytest.fixture(scope="module")
def record():
    load_start = os.getloadavg()
    yield _results
    if not _results:
        return
    from conftest import save_result
    for method, rows in _results.items():
        base = rows.get(1, {}).get("seconds_per_iteration")
        for row in rows.values():
            if base:
                row["speedup_vs_world_1"] = base / row["seconds_per_iteration"]
    on_cuda = torch.cuda.is_available()
    save_result("scaling", {
        "device": "cuda" if on_cuda else "cpu",
        "cpu_cores": os.cpu_count(),
        "ranks_share": "one GPU (NCCL)" if on_cuda else f"{os.cpu_count()} CPU cores, threads split evenly (gloo)",
        "load_average_start": list(load_start), "load_average_end": list(os.getloadavg()),
        "problem": {"classes": CLASSES, "image": [CHANNELS, SIZE, SIZE], "real_per_class": REAL_PER_CLASS,
                    "real_data": "random uniform [0, 1] images (stand-in for CIFAR-10)", "ipc": IPC,
                    "network": {"arch": "convnet", "width": WIDTH, "depth": DEPTH}, "settings": SETTINGS,
                    "iterations": ITERATIONS},
        "results": {m: {str(w): row for w, row in rows.items()} for m, rows in _results.items()},
    })


@pytest.mark.parametrize("world", WORLD_SIZES)
@pytest.mark.parametrize("method", ["dm", "dance"])
def test_scaling(benchmark, record, method, world, tmp_path):
    row = benchmark.pedantic(_launch, args=(method, world, tmp_path), rounds=1, iterations=1)
    record.setdefault(method, {})[world] = row
    benchmark.extra_info.update(row)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "OUT"), required=True)
    _worker(*parser.parse_args().worker)
