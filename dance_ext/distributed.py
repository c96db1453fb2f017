"""Multi-process condensation on torch.distributed (``torchrun``).

Classes are independent in DM and DANCE, so each rank owns a contiguous slice of them.
Every rank draws the randomness of *all* classes from the same seeded stream and keeps
its slice (a few numbers per class and iteration, one launch per kind of draw instead
of one per class), so what class c sees does not depend on the world size. Network
calls never mix groups of classes and ranks own whole groups (``condense.class_block``),
so on the CPU the condensed set is bit-identical for world size 1, 2 or 4 at equal
threads per rank. Nothing is exchanged inside the loop (a signal can stop one rank
without stranding the others in a collective); losses and images are gathered once at
the end.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

_LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Topology:
    """Where this process stands: its rank among ``world_size`` and its classes [first, stop)."""
    rank: int = 0
    world_size: int = 1
    first: int = 0
    stop: int | None = None  # None: every class

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def classes(self, num_classes: int) -> range:
        return range(self.first, num_classes if self.stop is None else self.stop)


def class_slices(num_classes: int, world_size: int, block: int) -> list[range]:
    """Contiguous class slices, one per rank, made of whole blocks of ``block`` classes
    (so that no network call straddles two ranks), as even as the blocks allow. Ranks
    beyond the number of blocks get empty slices."""
    blocks = -(-num_classes // block)
    base, extra = divmod(blocks, world_size)
    slices, start = [], 0
    for rank in range(world_size):
        count = base + (1 if rank < extra else 0)
        stop = min(num_classes, start + count * block)
        slices.append(range(start, stop))
        start = stop
    return slices


def setup(device) -> tuple[torch.device, bool]:
    """Join the default process group (from torchrun's environment) unless one exists.

    Returns the device of this rank (cuda:LOCAL_RANK for CUDA) and whether this call
    created the group (the caller then destroys it at the end)."""
    created = False
    if not dist.is_initialized():
        missing = [name for name in _LAUNCH_VARIABLES if name not in os.environ]
        if missing:
            raise ValueError(f"distributed: expected a torchrun launch (environment variables "
                             f"{', '.join(missing)} are not set); run `torchrun --nproc_per_node N -m dance_ext "
                             f"condense --distributed ...` or initialise torch.distributed yourself")
        backend = "nccl" if device.type == "cuda" else "gloo"
        # generous: the other ranks wait at a barrier while rank 0 pretrains missing experts
        dist.init_process_group(backend=backend, timeout=timedelta(hours=12))
        created = True
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank() % max(1, torch.cuda.device_count())))
        device = torch.device("cuda", local if device.index is None else device.index)
        torch.cuda.set_device(device)
    return device, created


def world_size() -> int:
    return dist.get_world_size()


def topology(num_classes: int, block: int) -> Topology:
    """This rank's share of the classes; every rank must get some."""
    rank, world = dist.get_rank(), dist.get_world_size()
    slices = class_slices(num_classes, world, block)
    if not slices[-1]:
        raise ValueError(f"distributed: {world} processes for {num_classes} classes in groups of {block} "
                         f"(class_block) leave some processes without classes; use at most "
                         f"{-(-num_classes // block)} processes or a smaller class_block")
    mine = slices[rank]
    return Topology(rank=rank, world_size=world, first=mine.start, stop=mine.stop)


def _comm_device() -> torch.device:
    """NCCL moves CUDA tensors only (on this rank's GPU); gloo moves CPU tensors."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_gather_rows(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``local`` along dim 0, in rank order (row counts may differ)."""
    comm = _comm_device()
    count = torch.tensor([local.shape[0]], device=comm)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    padded = local.new_zeros((max(counts), *local.shape[1:]), device=comm)
    padded[:local.shape[0]] = local.to(comm)
    pieces = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(pieces, padded)
    return torch.cat([piece[:n] for piece, n in zip(pieces, counts)]).to(local.device)


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    comm = _comm_device()
    total = values.to(comm).clone()
    dist.all_reduce(total)
    return total.to(values.device)


def sum_history(history: list[dict]) -> list[dict]:
    """Every rank logged its classes' share of the losses at the same iterations: add them up."""
    keys = ("inner_loss", "calib_loss")
    values = torch.tensor([[row[k] or 0.0 for k in keys] for row in history], dtype=torch.float64)
    total = all_reduce_sum(values)
    return [{"iteration": row["iteration"], **{k: (None if row[k] is None else float(v)) for k, v in zip(keys, sums)}}
            for row, sums in zip(history, total.tolist())]


def all_ranks_ok(ok: bool) -> bool:
    """Whether every rank passed a check (each rank contributes its own verdict)."""
    flag = torch.tensor([1 if ok else 0], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def barrier() -> None:
    dist.barrier()


def shutdown() -> None:
    dist.destroy_process_group()
