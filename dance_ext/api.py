"""``dance_ext.condense``: wiring. Resolve data and settings, check everything that can be
checked, get the experts, build the Condenser, run it, package the result."""
from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt, distributed as parallel, presets
from .baselines import herding_images
from .condense import Condenser, class_block
from .data import ClassData, as_class_data
from .experts import ExpertPool, as_expert_pool, cached_store, obtain_experts
from .folders import DirectoryLock, remove_stale_temps
from .models import network_spec
from .results import CondenseResult
from .synthetic import initial_images
from .utils import resolve_device
from .version import __version__


def condense(train, ipc: int = 10, method: str = "dance", experts=None, iterations: int | None = None,
             preset: str | None = None, device=None, seed: int = 0, checkpoint_dir=None, progress: bool = True,
             root=None, resume: bool = False, distributed: bool = False, checkpoint_every: int | None = None,
             test=None, callback=None, **overrides) -> CondenseResult:
    """Condense ``train`` into ``ipc`` synthetic images per class.

    ``train``: a dataset name ("digits", "fashion-mnist", "cifar10", ... with ``root``), a
    folder, a torch Dataset, (images, labels) tensors or a ClassData. ``method``: "random"
    (a random real subset), "herding", "dm" or "dance". ``experts`` (DANCE): an
    ExpertPool, a path to a store written by ``pretrain_experts``, or None to pretrain
    (and cache) them. ``preset``: "paper" (default: the official settings) or "quick" (a
    CPU budget); ``overrides``: any field of ``presets.CondenseConfig``.

    ``checkpoint_dir``: the run state is written there every ``checkpoint_every``
    iterations (default: ``log_every``), at the end, and when SIGTERM or SIGINT arrives
    (the process then ends as the signal asks); ``resume=True`` continues a matching
    checkpoint, with the same final result as an uninterrupted run.

    ``test``: held-out data for the test accuracy of experts pretrained here (a pretraining
    that reaches only chance accuracy is refused); default: the test split of a dataset name.

    ``distributed=True``: one process of a ``torchrun`` launch (or of a process group you
    initialised). Each rank condenses a contiguous slice of the classes; the result is
    gathered, so every rank returns the whole set. For a given seed it is the same for
    any world size (bit-identical on CPU at equal threads per rank).

    ``callback(row)`` (DM, DANCE) is called at every log interval (``log_every``) with
    ``iteration``, ``inner_loss`` and ``calib_loss`` (per class, each the mean over the
    iterations since the previous call, as in ``result.history``), ``seconds`` since the
    loop began, ``lr`` (``lr_img``) and ``images``: the current synthetic images in [0, 1]
    pixel space, detached (a view: do not modify them). Under ``distributed=True`` every
    rank calls it with its own classes' images and share of the losses.
    """
    device = resolve_device(device)
    created_group = False
    if distributed:
        device, created_group = parallel.setup(device)
    try:
        return _condense(train, ipc, method, experts, iterations, preset, device, seed, checkpoint_dir, progress,
                         root, resume, distributed, checkpoint_every, test, callback, overrides)
    finally:
        if created_group:
            parallel.shutdown()


def _condense(train, ipc, method, experts, iterations, preset, device, seed, checkpoint_dir, progress, root,
              resume, distributed, checkpoint_every, test, callback, overrides) -> CondenseResult:
    started = time.perf_counter()
    data = as_class_data(train, split="train", root=root, device=device)
    config = presets.resolve(method, preset, data.name, ipc, data.image_size, {"iterations": iterations, **overrides})
    _check_run(data, config, seed, checkpoint_every, checkpoint_dir, resume)
    topology, block = _topology(config, device, data.num_classes, distributed)
    progress = progress and topology.rank == 0
    generator = torch.Generator(device=device).manual_seed(seed)
    meta = _meta(data, config, preset or "paper", seed, device, topology.world_size, block)
    labels = torch.arange(data.num_classes).repeat_interleave(config.ipc)
    if config.method in presets.SELECTIONS:  # real subsets: no optimisation
        images = _select(data, config, experts, seed, generator, meta)
        meta["seconds"] = time.perf_counter() - started
        return CondenseResult(images.cpu(), labels, meta)

    with contextlib.ExitStack() as held:
        resumed = _check_checkpoints(checkpoint_dir, topology, resume, config.iterations, held)
        pool = None
        if config.method == "dance":
            if test is None and isinstance(train, str):
                test = functools.partial(as_class_data, train, split="test", root=root, device=device)
            pool = _experts(experts, test, data, config, seed, device, progress, topology)
            meta["experts"] = {"path": str(pool.path) if getattr(pool, "path", None) else None,
                               "num_pretrained": pool.num_experts, "spec": pool.spec}
            meta["network"] = pool.spec
        classes = topology.classes(data.num_classes)
        condenser = Condenser(data, config, generator, pool, classes, block)
        meta.update(batch_real_used=condenser.n_real, syn_per_class_used=condenser.n_syn)
        on_checkpoint = None
        if checkpoint_dir is not None:
            on_checkpoint = _checkpointing(checkpoint_dir, resumed, condenser, topology, seed, pool)
        condenser.run(config.iterations, on_log=callback, on_checkpoint=on_checkpoint,
                      checkpoint_every=checkpoint_every, progress=progress)
    images, history = condenser.images(), condenser.history
    if topology.distributed:
        images, history = parallel.all_gather_rows(images), parallel.sum_history(history)
    meta["seconds"] = time.perf_counter() - started
    return CondenseResult(images.cpu(), labels, meta, history=history)


def _check_run(data: ClassData, config: presets.CondenseConfig, seed, checkpoint_every, checkpoint_dir,
               resume) -> None:
    """What presets.resolve cannot see: the data's class sizes, the seed, the checkpoints."""
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
    if not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every: expected a positive int or None, got {checkpoint_every!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume: needs checkpoint_dir (--checkpoint-dir), the folder of the run to continue")


def _topology(config, device, num_classes: int, distributed: bool) -> tuple[parallel.Topology, int]:
    """This process's classes and the class group size of its network calls."""
    if not distributed:
        return parallel.Topology(), class_block(config, device, num_classes, None)
    block = class_block(config, device, num_classes, parallel.world_size())
    return parallel.topology(num_classes, block), block


def _meta(data: ClassData, config: presets.CondenseConfig, preset: str, seed: int, device, world_size: int,
          block: int) -> dict:
    meta = config.to_dict()
    meta.update(preset=preset, dataset=data.name, num_classes=data.num_classes, channels=data.channels,
                image_size=list(data.image_size), mean=list(data.mean), std=list(data.std),
                num_train=int(data.labels.numel()), seed=seed, device=str(device),
                torch_version=torch.__version__, dance_ext_version=__version__,
                world_size=world_size, class_block_used=block, classes=data.classes,
                departures=presets.departures(config, data.name, data.image_size))
    if config.method == "dm":
        meta["network"] = network_spec(config.arch, data.channels, data.num_classes, data.image_size,
                                       config.width, config.depth)
    return meta


def _select(data: ClassData, config, experts, seed: int, generator, meta: dict) -> torch.Tensor:
    """The real subset of a selection method ("random", "herding"), in [0, 1] pixel space."""
    if config.method == "random":
        return initial_images(data, config.ipc, "real", 1, generator, pixel_space=True)
    images, meta["herding"] = herding_images(data, config, experts, seed)
    return images


def _check_checkpoints(checkpoint_dir, topology: parallel.Topology, resume: bool, iterations: int,
                       held: contextlib.ExitStack):
    """Before any work: lock the folder for this run, clear what interrupted writes left, and
    read and verify the checkpoint to continue (None: start afresh). Under torch.distributed
    every rank learns whether all ranks passed, so none waits for a rank that refused."""
    if checkpoint_dir is None:
        return None
    try:
        if topology.rank == 0:  # one lock per run: the ranks of one launch share the folder
            held.enter_context(DirectoryLock(checkpoint_dir, "checkpoint_dir"))
            remove_stale_temps(checkpoint_dir)
        path = ckpt.check_before_start(checkpoint_dir, topology.rank, topology.world_size, resume)
        resumed = None if path is None else (path, ckpt.read(path))
        if resumed is not None and resumed[1]["iteration"] > iterations:
            raise ValueError(f"iterations: the checkpoint {path} is at iteration {resumed[1]['iteration']}, past the "
                             f"{iterations} asked; ask for at least that many, or use another checkpoint_dir")
        failed = None
    except ValueError as exc:
        failed = exc
    if topology.distributed and not parallel.all_ranks_ok(failed is None) and failed is None:
        raise ValueError("checkpoint_dir: another rank refused the checkpoint folder (its error is in its log)")
    if failed is not None:
        raise failed
    return resumed


def _checkpointing(checkpoint_dir, resumed, condenser: Condenser, topology: parallel.Topology, seed: int, pool):
    """Continue ``resumed`` (path, content) if given; returns the loop's checkpoint writer."""
    data = condenser.data
    identity = ckpt.run_identity(data.content_sha256(), data, condenser.config, seed, pool, condenser.classes,
                                 topology.world_size)
    if resumed is not None:
        condenser.load_state_dict(ckpt.state_for(resumed[1], resumed[0], identity))
    path = ckpt.path_for(checkpoint_dir, topology.rank, topology.world_size)

    def on_checkpoint(c: Condenser) -> Path:
        ckpt.save(path, identity, c.state_dict())
        return path
    return on_checkpoint


def _experts(experts, test, data: ClassData, config, seed: int, device, progress: bool,
             topology: parallel.Topology) -> ExpertPool:
    """The given experts, or the cached ones for these settings (rank 0 pretrains them once)."""
    shape = (data.channels, data.num_classes, data.image_size)
    if experts is not None:
        return as_expert_pool(experts, shape, device)
    settings = dict(num=config.num_experts, epochs=config.pretrain_epochs, batch_size=config.pretrain_batch,
                    arch=config.arch, width=config.width, depth=config.depth, seed=seed)
    store, pool = cached_store(data, settings), None
    if topology.rank == 0:
        pool = obtain_experts(store, data, device=device, progress=progress, test=test, **settings)
    if topology.distributed:
        parallel.barrier()  # the other ranks load what rank 0 pretrained
    return as_expert_pool(pool or store, shape, device)
