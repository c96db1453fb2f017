"""``dance_ext.condense``: resolve data, settings and experts, run the loop, package the result."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import __version__, checkpoint as ckpt, distributed as parallel, presets
from .baselines import herding_images
from .condense import Condenser, class_block, tf32_mode
from .data import ClassData, as_class_data
from .experts import ExpertPool, as_expert_pool, pretrain_experts
from .models import network_spec
from .results import CondenseResult
from .synthetic import initial_images
from .train import resolve_device


def condense(train, ipc: int = 10, method: str = "dance", experts=None, iterations: int | None = None,
             preset: str | None = None, device=None, seed: int = 0, checkpoint_dir=None, progress: bool = True,
             root=None, resume: bool = False, distributed: bool = False, checkpoint_every: int | None = None,
             **overrides) -> CondenseResult:
    """Condense ``train`` into ``ipc`` synthetic images per class.

    ``train``: a dataset name ("digits", "fashion-mnist", "cifar10", ... with ``root``), a
    folder, a torch Dataset, (images, labels) tensors or a ClassData. ``method``: "random"
    (a random real subset), "dm" or "dance". ``experts`` (DANCE): an ExpertPool, a path to
    a store written by ``pretrain_experts``, or None to pretrain (and cache) them.
    ``preset``: "paper" (default: the official settings) or "quick" (a CPU budget);
    ``overrides``: any field of ``presets.CondenseConfig``.

    ``checkpoint_dir``: the run state is written there every ``checkpoint_every``
    iterations (default: ``log_every``), at the end, and when SIGTERM or SIGINT arrives
    (the process then ends as the signal asks); ``resume=True`` continues a matching
    checkpoint, with the same final result as an uninterrupted run.

    ``distributed=True``: one process of a ``torchrun`` launch (or of a process group you
    initialised). Each rank condenses a contiguous slice of the classes; the result is
    gathered, so every rank returns the whole set. For a given seed it is the same for
    any world size (bit-identical on CPU at equal threads per rank).
    """
    device = resolve_device(device)
    created_group = False
    if distributed:
        device, created_group = parallel.setup(device)
    try:
        return _condense(train, ipc, method, experts, iterations, preset, device, seed, checkpoint_dir, progress,
                         root, resume, distributed, checkpoint_every, overrides)
    finally:
        if created_group:
            parallel.shutdown()


def _condense(train, ipc, method, experts, iterations, preset, device, seed, checkpoint_dir, progress, root,
              resume, distributed, checkpoint_every, overrides) -> CondenseResult:
    data = as_class_data(train, split="train", root=root, device=device)
    config = presets.resolve(method, preset, data.name, ipc, data.image_size,
                             {"iterations": iterations, **overrides})
    _check_class_sizes(data, config)
    if not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every: expected a positive int or None, got {checkpoint_every!r}")
    world_size = parallel.world_size() if distributed else 1
    block = class_block(config, device, data.num_classes, world_size if distributed else None)
    topology = parallel.topology(data.num_classes, block) if distributed else parallel.Topology()
    progress = progress and topology.rank == 0
    generator = torch.Generator(device=device).manual_seed(seed)
    started = time.perf_counter()
    meta = _meta(data, config, seed, device)
    meta.update(world_size=world_size, class_block_used=block)
    labels = torch.arange(data.num_classes).repeat_interleave(config.ipc)

    if config.method in presets.SELECTIONS:  # real subsets: no optimisation
        if config.method == "random":
            images = initial_images(data, config.ipc, "real", 1, generator, pixel_space=True)
        else:
            images, meta["herding"] = herding_images(data, config, experts, seed)
        meta["seconds"] = time.perf_counter() - started
        return CondenseResult(images.cpu(), labels, meta)

    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = ckpt.path_for(checkpoint_dir, topology.rank, world_size)
        resume_from = ckpt.check_before_start(checkpoint_dir, topology.rank, world_size, resume)
        if topology.distributed:
            parallel.barrier()  # every rank has looked before any rank writes its checkpoint
    pool = None
    if config.method == "dance":
        pool = _resolve_experts(experts, train, data, config, seed, device, progress, topology)
        meta["experts"] = {"path": str(pool.path) if getattr(pool, "path", None) else None,
                           "num_pretrained": pool.num_experts, "spec": pool.spec}
        meta["network"] = pool.spec
    condenser = Condenser(data, config, generator, pool, topology.classes(data.num_classes), block)
    meta["batch_real_used"] = condenser.n_real
    meta["syn_per_class_used"] = condenser.n_syn
    identity = _run_identity(data, config, seed, pool, topology)
    history: list[dict] = []
    if checkpoint is not None and resume_from is not None:
        history = ckpt.load(resume_from, identity, condenser)

    every = checkpoint_every or config.log_every
    bar = tqdm(total=config.iterations, initial=condenser.iteration, disable=not progress,
               desc=f"{config.method} ipc={config.ipc}", unit="it")
    with tf32_mode(config.tf32), ckpt.stop_on_signals(checkpoint is not None) as stop:
        while condenser.iteration < config.iterations and not stop:
            inner, calib = condenser.step(condenser.draw())
            bar.update(1)
            done = condenser.iteration == config.iterations
            if condenser.iteration % config.log_every == 0 or done:
                # the only host sync of the loop: once per log interval; per-class values as the official
                # log (this rank's share of the sum over classes; summed over ranks at the end)
                row = {"iteration": condenser.iteration, "inner_loss": float(inner) / data.num_classes,
                       "calib_loss": None if calib is None else float(calib) / data.num_classes}
                history.append(row)
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "iteration" and v is not None})
            if checkpoint is not None and (condenser.iteration % every == 0 or done):
                ckpt.save(checkpoint, identity, condenser, history)
    bar.close()
    if stop:
        ckpt.save(checkpoint, identity, condenser, history)
        tqdm.write(f"dance-ext: {signal.Signals(stop.signal).name} received: iteration {condenser.iteration} "
                   f"saved to {checkpoint}; continue with resume=True (--resume)", file=sys.stderr)
        stop.reraise()
    images = condenser.images()
    if topology.distributed:
        images = parallel.all_gather_rows(images)
        history = _sum_over_ranks(history)
    meta["seconds"] = time.perf_counter() - started
    return CondenseResult(images.cpu(), labels, meta, history=history)


def _sum_over_ranks(history: list[dict]) -> list[dict]:
    """Every rank logged its classes' share of the losses at the same iterations: add them up."""
    keys = ("inner_loss", "calib_loss")
    values = torch.tensor([[row[k] or 0.0 for k in keys] for row in history], dtype=torch.float64)
    total = parallel.all_reduce_sum(values)
    return [{"iteration": row["iteration"], **{k: (None if row[k] is None else float(v)) for k, v in zip(keys, sums)}}
            for row, sums in zip(history, total.tolist())]


def _check_class_sizes(data: ClassData, config: presets.CondenseConfig) -> None:
    counts = data.class_counts()
    # noise init still samples real batches of every class
    needed = 1 if config.init == "noise" else config.ipc * (config.factor ** 2 if config.init == "mix" else 1)
    smallest = int(counts.min())
    if smallest < needed:
        what = {"mix": f"ipc·factor² = {config.ipc}·{config.factor}² = {needed}",
                "noise": "the 1 image its real batches need"}.get(config.init, f"ipc = {needed}")
        cls = int(counts.argmin())
        raise ValueError(f"ipc: class {cls} of {data.name} has only {smallest} images, fewer than "
                         f"{what} needed by init={config.init!r}")


def _meta(data: ClassData, config: presets.CondenseConfig, seed: int, device) -> dict:
    meta = config.to_dict()
    meta.update(dataset=data.name, num_classes=data.num_classes, channels=data.channels,
                image_size=list(data.image_size), mean=list(data.mean), std=list(data.std),
                num_train=int(data.labels.numel()), seed=seed, device=str(device),
                torch_version=torch.__version__, dance_ext_version=__version__)
    if config.method == "dm":
        meta["network"] = network_spec(config.arch, data.channels, data.num_classes, data.image_size,
                                       config.width, config.depth)
    return meta


# ---- experts ----------------------------------------------------------------------------
def cache_root() -> Path:
    return Path(os.environ.get("DANCE_EXT_CACHE", Path.home() / ".cache" / "dance_ext"))


def _fingerprint(data: ClassData) -> str:
    digest = hashlib.sha256()
    digest.update(data.images.detach().cpu().contiguous().numpy().tobytes())
    digest.update(data.labels.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def _resolve_experts(experts, train, data: ClassData, config, seed: int, device, progress: bool,
                     topology: parallel.Topology) -> ExpertPool:
    shape = (data.channels, data.num_classes, data.image_size)
    if experts is not None:
        return as_expert_pool(experts, shape, device)
    spec = network_spec(config.arch, data.channels, data.num_classes, data.image_size, config.width, config.depth)
    key = json.dumps({"data": _fingerprint(data), "spec": spec, "num": config.num_experts,
                      "epochs": config.pretrain_epochs, "batch": config.pretrain_batch, "seed": seed},
                     sort_keys=True)
    store = cache_root() / "experts" / f"{data.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    pool = None
    if topology.rank == 0 and not (store / "manifest.json").exists():
        test = train if isinstance(train, str) else None
        pool = pretrain_experts(data, num=config.num_experts, epochs=config.pretrain_epochs, out=store,
                                arch=config.arch, test=test, seed=seed, device=device,
                                batch_size=config.pretrain_batch, width=config.width, depth=config.depth,
                                progress=progress)
    if topology.distributed:
        parallel.barrier()  # the other ranks load what rank 0 pretrained
    return as_expert_pool(pool or store, shape, device)


# ---- checkpoints ----------------------------------------------------------------------------
def _run_identity(data: ClassData, config, seed: int, pool, topology) -> str:
    """What a checkpoint must share with the run continuing it: every setting but the
    iteration count, logging and checkpoint cadence, the data, the experts, the seed and
    this rank's classes."""
    settings = config.to_dict()
    for free in ("iterations", "log_every"):
        del settings[free]
    return json.dumps({"settings": settings, "seed": seed, "dataset": data.name, "num_train": int(data.labels.numel()),
                       "class_counts": data.class_counts().tolist(), "image_size": list(data.image_size),
                       "experts": None if pool is None else {"spec": pool.spec, "num": pool.num_experts},
                       "classes": [topology.classes(data.num_classes).start, topology.classes(data.num_classes).stop],
                       "world_size": topology.world_size}, sort_keys=True)
