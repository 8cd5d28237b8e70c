"""Data-parallel training of the D-DBPN job across the ranks of one trial.

A trial started with a world size above one (the RANK / WORLD_SIZE / MASTER_ADDR /
MASTER_PORT variables that autotune's local and SLURM executors set for multi-rank trials,
or torchrun's) trains with DistributedDataParallel: NCCL on GPUs, gloo on CPUs. Every rank
takes its slice of each global batch (``BatchSlice``): the union of the ranks' slices is
exactly the batch a one-process run draws, and with equal slices the averaged gradients are
the one-process gradients, so a 2-rank run and a 1-process run follow the same path up to
floating-point rounding (the discriminator's BatchNorm statistics are per rank). Rank 0
evaluates, saves the checkpoint (the bare modules' weights, loadable by a one-process run)
and returns the metrics.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """This process's place in the trial (world 1: a plain one-process run)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def parallel(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_environment() -> Ranks:
    """What the torch.distributed variables say; no WORLD_SIZE (or 1): one process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Ranks()
    return Ranks(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def start(ranks: Ranks, cuda: bool) -> torch.device:
    """Join the process group (when parallel) and pick this rank's device.

    On GPUs, rank ``local_rank`` uses ``cuda:local_rank`` among those it sees (modulo their
    number: a site that binds each task to its own GPU shows it one, ``cuda:0``).
    """
    device = torch.device("cpu")
    if cuda:
        index = ranks.local_rank % max(1, torch.cuda.device_count())
        torch.cuda.set_device(index)
        device = torch.device("cuda", index)
    if ranks.parallel and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", rank=ranks.rank,
                                world_size=ranks.world)
    return device


def stop(ranks: Ranks) -> None:
    if ranks.parallel and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: torch.nn.Module | None, ranks: Ranks, device: torch.device):
    """The module DistributedDataParallel-wrapped when parallel (else itself)."""
    if module is None or not ranks.parallel:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def slice_of(batch: int, ranks: Ranks) -> tuple[int, int]:
    """(offset, size) of this rank's part of a global batch; sizes differ by one at most."""
    base, extra = divmod(batch, ranks.world)
    size = base + (1 if ranks.rank < extra else 0)
    offset = ranks.rank * base + min(ranks.rank, extra)
    return offset, size


class BatchSlice(torch.utils.data.Sampler):
    """Indices of this rank's slices of the global batches of epoch ``self.epoch``.

    A one-process run's batch ``b`` of epoch ``e`` is the samples
    ``e * length + b * batch ... + batch - 1``; rank r gets ``slice_of(batch, ranks)`` of each.
    Used with ``batch_size = slice size``, the loader yields one slice per global batch.
    """

    def __init__(self, length: int, batch: int, ranks: Ranks):
        self.length = int(length)
        self.batch = int(batch)
        self.offset, self.size = slice_of(self.batch, ranks)
        self.epoch = 0

    def __iter__(self):
        start = self.epoch * self.length
        for b in range(self.length // self.batch):
            first = start + b * self.batch + self.offset
            yield from range(first, first + self.size)

    def __len__(self) -> int:
        return (self.length // self.batch) * self.size


def mean_over_ranks(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The average of a scalar over the ranks (itself when not parallel)."""
    if not ranks.parallel:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / ranks.world
