"""Devices and seeds: where a run computes and how its randomness is derived.

Every random draw of dance_ext comes from an explicit ``torch.Generator`` seeded from the
run's seed (the official codes draw from unseeded or wall-clock-seeded global state,
docs/ALGORITHMS.md §1.7, §5.11), so a run is a function of its seed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

def resolve_device(device=None) -> torch.device:
    """``device``, or CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        why = "it was built without CUDA" if torch.version.cuda is None else "it sees no GPU"
        raise ValueError(f"device: {device} was asked for but torch has no usable CUDA device here ({why}; "
                         f"torch {torch.__version__}); use device='cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device: no CUDA device {device} (this machine has {torch.cuda.device_count()})")
    return device

def derive_seed(*keys: int) -> int:
    """A 63-bit seed mixed from non-negative integer keys, e.g. (seed, purpose, run):
    neighbouring seeds give unrelated streams."""
    for k in keys:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
            raise ValueError(f"seed: expected a non-negative int, got {k!r}")
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])

def make_generator(seed: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen

def seeded_network(build: Callable[[], torch.nn.Module], seed: int, device) -> torch.nn.Module:
    """``build()`` under a private CPU RNG seeded with ``seed`` (PyTorch default init),
    then moved to ``device``; the caller's global RNG state is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    return model.to(device)


def random_rows(table: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` random entries of each row of a −1-padded index table (C, M), without
    replacement within a row, as a (C, n) tensor on the table's device: one uniform key
    per entry from ``generator``, padding sorted last."""
    keys = torch.rand(table.shape, generator=generator, device=generator.device).to(table.device)
    keys = keys.masked_fill(table < 0, float("inf"))
    return table.gather(1, keys.argsort(dim=1)[:, :n])
