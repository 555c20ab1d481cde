"""torch.distributed plumbing for processes started by torchrun (one place, so stages agree)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    size: int = 1
    rank: int = 0
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> World:
        """The process's place as torchrun describes it (a single process when not under torchrun)."""
        env = os.environ
        return cls(int(env.get("WORLD_SIZE", 1)), int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)))

    def device(self, requested: str | None) -> torch.device:
        """The requested device, else this rank's GPU, else the CPU."""
        if requested:
            return torch.device(requested)
        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")


@contextlib.contextmanager
def process_group(world: World) -> Iterator[None]:
    """A CPU (gloo) process group for barriers; ranks may wait long for each other, hence the long timeout."""
    if world.size == 1 or dist.is_initialized():
        yield
        return
    dist.init_process_group("gloo", timeout=timedelta(days=7))
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def leave_process_group() -> None:
    """Wait for every rank, then destroy the process group: a rank that exits while others still use the group
    can abort in gloo's teardown ("terminate called without an active exception")."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
