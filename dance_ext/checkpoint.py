"""Run state on disk and stopping on signals.

A checkpoint holds everything the loop needs to continue bit-identically: the synthetic
images, the momentum buffer, the iteration, the generator state (the loop's only source
of randomness) and the logged losses. Under torch.distributed every rank writes its own
file. Files are written atomically (temp file + rename) and read with weights_only=True.
"""
from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path

import torch

from ._files import atomic_write, check_output_dir, load_tensors

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


def save(path: Path, identity: str, condenser, history: list) -> None:
    state = {"identity": identity, "iteration": condenser.iteration, "syn": condenser.syn.detach().cpu(),
             "momentum_buffer": condenser.momentum_buffer.cpu(), "generator": condenser.gen.get_state(),
             "history_json": json.dumps(history)}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load(path: Path, identity: str, condenser) -> list:
    """Restore ``condenser`` from ``path``; returns the logged history."""
    state = load_tensors(path, "checkpoint_dir", "checkpoint")
    if not isinstance(state, dict) or state.get("identity") != identity:
        raise ValueError(f"checkpoint_dir: {path} was written by a run with other settings, data, seed or "
                         f"classes; use another checkpoint_dir or resume=False")
    with torch.no_grad():
        condenser.syn.copy_(state["syn"])
        condenser.momentum_buffer.copy_(state["momentum_buffer"])
    condenser.gen.set_state(state["generator"])
    condenser.iteration = int(state["iteration"])
    return json.loads(state["history_json"])


class StopRequest:
    """Set by SIGTERM or SIGINT; the loop checks it between iterations."""
    def __init__(self):
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    def reraise(self) -> None:
        """End the process as the signal would have without us (handlers are restored by now)."""
        signal.raise_signal(self.signal)


@contextlib.contextmanager
def stop_on_signals(enabled: bool):
    """While active, the first SIGTERM/SIGINT only requests a stop (so the loop can write a
    checkpoint); a second one acts at once. Python allows handlers in the main thread only."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum, frame):
        if request.signal is not None:  # asked twice: stop now
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)
            return
        request.signal = signum

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
