"""``trainer.strategy=ddp``: data-parallel training over the processes ``torchrun`` starts.

Every rank builds the same model from the same seed and draws the same batch order;
of each global batch of ``trainer.batch_size`` samples, rank r trains on samples
r, r + W, r + 2W, ... (W ranks). DistributedDataParallel averages the gradients, and
each rank's loss is weighted by its share of the batch, so a step is the step one
process would take on the whole batch. Sums (losses, correct answers) are added up
across ranks; only rank 0 writes anything.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from nnexp.errors import ConfigError

STRATEGIES = ("auto", "ddp")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Each value added up over the ranks (one collective for the whole list)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if it is true on any."""
        return self.sum([1.0 if flag else 0.0], device)[0] > 0

    def first(self, step: int, device: torch.device) -> int:
        """The smallest positive ``step`` over the ranks (0 where no rank has one)."""
        if not self.active:
            return step
        t = torch.tensor(float(step) if step > 0 else math.inf, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return 0 if math.isinf(t.item()) else int(t.item())

    def broadcast(self, obj: object) -> object:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


SINGLE = Dist()


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def rank_from_env() -> int:
    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else 0


def setup(strategy: str, device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group for ``ddp``; returns the ranks and this rank's device."""
    if strategy != "ddp":
        return SINGLE, device
    if not launched_by_torchrun():
        raise ConfigError("trainer.strategy=ddp needs the processes torchrun starts: "
                          "torchrun --nproc_per_node=N -m nnexp train trainer.strategy=ddp ...")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world), device


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()
