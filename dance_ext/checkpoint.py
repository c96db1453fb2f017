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

from .checks import is_int
from .files import atomic_write, load_tensors, sha256_tensors
from .folders import check_output_dir

SINGLE = "checkpoint.pt"
TENSOR_FIELDS = ("syn", "momentum_buffer", "generator")


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


def run_identity(data_sha256: str, data, config, seed: int, pool, classes: range, world_size: int) -> str:
    """What a checkpoint must share with the run continuing it: every setting but the
    iteration count, logging and checkpoint cadence; the data's content (``data_sha256``),
    the expert store's weights (its manifest checksum), the seed and this rank's classes."""
    settings = config.to_dict()
    for free in ("iterations", "log_every"):
        del settings[free]
    experts = None if pool is None else {"spec": pool.spec, "num": pool.num_experts,
                                         "sha256": pool.manifest.get("sha256")}
    return json.dumps({"settings": settings, "seed": seed, "dataset": data.name, "data_sha256": data_sha256,
                       "num_train": int(data.labels.numel()), "image_size": list(data.image_size),
                       "experts": experts, "classes": [classes.start, classes.stop], "world_size": world_size},
                      sort_keys=True)


def _digest(payload: dict) -> str:
    """sha256 of a checkpoint's content: its tensors' bytes (by field name), then every other
    field as JSON."""
    names = sorted(k for k, v in payload.items() if isinstance(v, torch.Tensor))
    rest = {k: v for k, v in payload.items() if k not in names and k != "sha256"}
    return sha256_tensors(*(payload[k] for k in names), extra=json.dumps([names, rest], sort_keys=True).encode())


def save(path: Path, identity: str, state: dict) -> None:
    payload = {"identity": identity, **state, "history_json": json.dumps(state["history"])}
    del payload["history"]  # JSON text: weights_only loading takes tensors and plain containers
    payload["sha256"] = _digest(payload)
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def read(path: Path) -> dict:
    """The verified content of the checkpoint ``path`` (its checksum must match)."""
    payload = load_tensors(path, "checkpoint_dir", "checkpoint")
    fields_ok = isinstance(payload, dict) and all(isinstance(payload.get(k), torch.Tensor) for k in TENSOR_FIELDS) \
        and isinstance(payload.get("history_json"), str) and is_int(payload.get("iteration"))
    if not fields_ok or payload.get("sha256") != _digest(payload):
        raise ValueError(f"checkpoint_dir: {path} is corrupt (its content does not match its checksum) or not a "
                         f"dance_ext checkpoint; remove it or use another checkpoint_dir")
    return payload


def state_for(payload: dict, path: Path, identity: str) -> dict:
    """A read checkpoint's state for ``Condenser.load_state_dict``, refused unless it belongs
    to the run ``identity``."""
    if payload.get("identity") != identity:
        raise ValueError(f"checkpoint_dir: {path} was written by a run with other settings, data, experts, seed "
                         f"or classes; use another checkpoint_dir or resume=False")
    state = {k: v for k, v in payload.items() if k not in ("identity", "history_json", "sha256")}
    state["history"] = json.loads(payload["history_json"])
    return state
