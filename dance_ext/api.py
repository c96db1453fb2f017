"""``dance_ext.condense``: resolve data, settings and experts, run the loop, package the result."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import __version__, presets
from .condense import Condenser, tf32_mode
from .data import ClassData, as_class_data
from .experts import ExpertPool, pretrain_experts
from .models import network_spec
from ._files import atomic_write
from .results import CondenseResult
from .synthetic import initial_images
from .train import resolve_device


def condense(train, ipc: int = 10, method: str = "dance", experts=None, iterations: int | None = None,
             preset: str | None = None, device=None, seed: int = 0, checkpoint_dir=None, progress: bool = True,
             root=None, resume: bool = False, **overrides) -> CondenseResult:
    """Condense ``train`` into ``ipc`` synthetic images per class.

    ``train``: a dataset name ("digits", "fashion-mnist", "cifar10", ... with ``root``), a
    folder, a torch Dataset, (images, labels) tensors or a ClassData. ``method``: "random"
    (a random real subset), "dm" or "dance". ``experts`` (DANCE): an ExpertPool, a path to
    a store written by ``pretrain_experts``, or None to pretrain (and cache) them.
    ``preset``: "paper" (default: the official settings) or "quick" (a CPU budget);
    ``overrides``: any field of ``presets.CondenseConfig``. ``checkpoint_dir``: where the
    run state is written every ``log_every`` iterations; with ``resume=True`` a matching
    checkpoint there is continued.
    """
    device = resolve_device(device)
    data = as_class_data(train, split="train", root=root, device=device)
    config = presets.resolve(method, preset, data.name, ipc, data.image_size,
                             {"iterations": iterations, **overrides})
    _check_class_sizes(data, config)
    if not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    generator = torch.Generator(device=device).manual_seed(seed)
    started = time.perf_counter()
    meta = _meta(data, config, seed, device)
    labels = torch.arange(data.num_classes).repeat_interleave(config.ipc)

    if config.method == "random":
        images = initial_images(data, config.ipc, "real", 1, generator, pixel_space=True)
        meta["seconds"] = time.perf_counter() - started
        return CondenseResult(images.cpu(), labels, meta)

    pool = None
    if config.method == "dance":
        pool = _resolve_experts(experts, train, data, config, seed, device, progress)
        meta["experts"] = {"path": str(pool.path) if getattr(pool, "path", None) else None,
                           "num_pretrained": pool.num_experts, "spec": pool.spec}
        meta["network"] = pool.spec
    condenser = Condenser(data, config, generator, pool)
    meta["batch_real_used"] = condenser.n_real
    meta["syn_per_class_used"] = condenser.n_syn
    checkpoint = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir is not None else None
    history: list[dict] = []
    if checkpoint is not None and checkpoint.exists():
        if not resume:
            raise ValueError(f"checkpoint_dir: {checkpoint} exists; pass resume=True to continue it, "
                             f"or choose another directory")
        history = _load_checkpoint(checkpoint, condenser, config, seed)

    bar = tqdm(total=config.iterations, initial=condenser.iteration, disable=not progress,
               desc=f"{config.method} ipc={config.ipc}", unit="it")
    with tf32_mode(config.tf32):
        while condenser.iteration < config.iterations:
            inner, calib = condenser.step(condenser.draw())
            bar.update(1)
            if condenser.iteration % config.log_every == 0 or condenser.iteration == config.iterations:
                # the only host sync of the loop: once per log interval; per-class values as the official log
                row = {"iteration": condenser.iteration, "inner_loss": float(inner) / data.num_classes,
                       "calib_loss": None if calib is None else float(calib) / data.num_classes}
                history.append(row)
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "iteration" and v is not None})
                if checkpoint is not None:
                    _save_checkpoint(checkpoint, condenser, config, seed, history)
    bar.close()
    meta["seconds"] = time.perf_counter() - started
    return CondenseResult(condenser.images().cpu(), labels, meta, history=history)


def _check_class_sizes(data: ClassData, config: presets.CondenseConfig) -> None:
    counts = data.class_counts()
    needed = config.ipc * (config.factor ** 2 if config.init == "mix" else 1)
    smallest = int(counts.min())
    if config.init != "noise" and smallest < needed:
        what = f"ipc·factor² = {config.ipc}·{config.factor}² = {needed}" if config.init == "mix" else f"ipc = {needed}"
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


def _resolve_experts(experts, train, data: ClassData, config, seed: int, device, progress: bool) -> ExpertPool:
    if isinstance(experts, ExpertPool):
        pool = experts
    elif isinstance(experts, (str, os.PathLike)):
        pool = ExpertPool.load(experts, device=device)
    elif experts is None:
        spec = network_spec(config.arch, data.channels, data.num_classes, data.image_size, config.width, config.depth)
        key = json.dumps({"data": _fingerprint(data), "spec": spec, "num": config.num_experts,
                          "epochs": config.pretrain_epochs, "batch": config.pretrain_batch, "seed": seed},
                         sort_keys=True)
        store = cache_root() / "experts" / f"{data.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        if (store / "manifest.json").exists():
            pool = ExpertPool.load(store, device=device)
        else:
            test = train if isinstance(train, str) else None
            pool = pretrain_experts(data, num=config.num_experts, epochs=config.pretrain_epochs, out=store,
                                    arch=config.arch, test=test, seed=seed, device=device,
                                    batch_size=config.pretrain_batch, width=config.width, depth=config.depth,
                                    progress=progress)
    else:
        raise TypeError(f"experts: expected None, a path to an expert store or an ExpertPool, "
                        f"got {type(experts).__name__}")
    pool.check_compatible(data.channels, data.num_classes, data.image_size)
    return pool


# ---- checkpoints --------------------------------------------------------------------------
def _resumable_config(config) -> str:
    """The settings a checkpoint must share with the run continuing it (more iterations are fine)."""
    settings = config.to_dict()
    del settings["iterations"]
    return json.dumps(settings, sort_keys=True)


def _save_checkpoint(path: Path, condenser: Condenser, config, seed: int, history: list) -> None:
    state = {"config_json": _resumable_config(config), "seed": seed,
             "iteration": condenser.iteration, "syn": condenser.syn.detach().cpu(),
             "momentum_buffer": condenser.momentum_buffer.cpu(), "generator": condenser.gen.get_state(),
             "history_json": json.dumps(history)}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def _load_checkpoint(path: Path, condenser: Condenser, config, seed: int) -> list:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("config_json") != _resumable_config(config) or state.get("seed") != seed:
        raise ValueError(f"checkpoint_dir: {path} was written by a run with other settings or seed; "
                         f"use another checkpoint_dir or resume=False")
    with torch.no_grad():
        condenser.syn.copy_(state["syn"])
        condenser.momentum_buffer.copy_(state["momentum_buffer"])
    condenser.gen.set_state(state["generator"])
    condenser.iteration = int(state["iteration"])
    return json.loads(state["history_json"])
