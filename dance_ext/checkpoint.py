"""Run state on disk: where checkpoints live, what run they belong to, writing and reading them.

The state itself is ``Condenser.state_dict()`` (images, momentum buffer, iteration,
generator state, logged losses): enough to continue bit-identically. Under
torch.distributed every rank writes its own file. Files are written atomically (temp
file + rename) and read with weights_only=True.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .files import atomic_write, check_output_dir, load_tensors

SINGLE = "checkpoint.pt"


def path_for(directory, rank: int, world_size: int) -> Path:
    name = SINGLE if world_size == 1 else f"checkpoint-rank{rank}-of-{world_size}.pt"
    return Path(directory) / name


def existing(directory) -> list[Path]:
    return sorted(Path(directory).glob("checkpoint*.pt"))


def check_before_start(directory, rank: int, world_size: int, resume: bool) -> Path | None:
    """The checkpoint this process continues (None: start afresh). Raises before any work
    when the directory holds checkpoints that would be overwritten or cannot be continued."""
    check_output_dir(directory, "checkpoint_dir")
    mine, found = path_for(directory, rank, world_size), existing(directory)
    if found and not resume:
        raise ValueError(f"checkpoint_dir: {directory} holds {', '.join(p.name for p in found)}; pass resume=True "
                         f"(--resume) to continue, or choose another directory")
    if found and not mine.exists():
        raise ValueError(f"checkpoint_dir: {directory} holds {', '.join(p.name for p in found)} but no {mine.name}: "
                         f"it was written with another world size; resume with the same number of processes")
    return mine if mine.exists() else None


def run_identity(data, config, seed: int, pool, classes: range, world_size: int) -> str:
    """What a checkpoint must share with the run continuing it: every setting but the
    iteration count, logging and checkpoint cadence, the data, the experts, the seed and
    this rank's classes."""
    settings = config.to_dict()
    for free in ("iterations", "log_every"):
        del settings[free]
    return json.dumps({"settings": settings, "seed": seed, "dataset": data.name, "num_train": int(data.labels.numel()),
                       "class_counts": data.class_counts().tolist(), "image_size": list(data.image_size),
                       "experts": None if pool is None else {"spec": pool.spec, "num": pool.num_experts},
                       "classes": [classes.start, classes.stop], "world_size": world_size}, sort_keys=True)


def save(path: Path, identity: str, state: dict) -> None:
    payload = {"identity": identity, **state, "history_json": json.dumps(state["history"])}
    del payload["history"]  # JSON text: weights_only loading takes tensors and plain containers
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load(path: Path, identity: str) -> dict:
    """The state saved in ``path``, refused unless it belongs to the run ``identity``."""
    payload = load_tensors(path, "checkpoint_dir", "checkpoint")
    if not isinstance(payload, dict) or payload.get("identity") != identity:
        raise ValueError(f"checkpoint_dir: {path} was written by a run with other settings, data, seed or "
                         f"classes; use another checkpoint_dir or resume=False")
    state = {k: v for k, v in payload.items() if k not in ("identity", "history_json")}
    state["history"] = json.loads(payload["history_json"])
    return state
