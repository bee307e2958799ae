"""Where training stands, beyond model, optimizer, scheduler and early stopping: what a checkpoint must
carry so that a resumed run continues exactly (the same batches in the same order, an epoch in progress
finished from the batch it stopped at)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from nnexp.checkpoint import snapshot
from nnexp.distributed import Dist
from nnexp.losses import Objective


@dataclass
class EpochSums:
    """Running sums of an epoch in progress: what a mid-epoch checkpoint must carry to finish it exactly."""
    step: int = 0  # batches done
    loss: float = 0.0  # sum of batch-mean loss x batch size
    correct: int = 0
    seen: int = 0
    units: int = 0
    grad_first: float = 0.0  # sums over steps of the two gradient norms
    grad_last: float = 0.0
    grad_steps: int = 0

    def state_dict(self) -> dict[str, float | int]:
        return dict(vars(self))

    @classmethod
    def from_state(cls, state: dict[str, float | int]) -> EpochSums:
        return cls(**state)


@dataclass
class TrainState:
    """What fit() carries from epoch to epoch; a checkpoint stores it (``state_dict``)."""
    generator: torch.Generator  # draws each epoch's order: CPU, so the order is the same on any device
    epoch: int = 0  # epochs completed
    epoch_start: torch.Tensor | None = None  # generator state when the current epoch drew its order
    sums: EpochSums | None = None  # the epoch in progress, when stopped mid-epoch
    history: list[dict[str, float | None]] = field(default_factory=list)
    best_state: dict | None = None  # weights of the best epoch, for restore_best
    best_missing: int | None = None  # resumed without best.pt: the best epoch whose weights are lost
    # flat (C * C,) validation confusion counts of the last epoch and of best_state (this process only)
    val_counts: torch.Tensor | None = None
    best_counts: torch.Tensor | None = None

    @classmethod
    def new(cls, seed: int) -> TrainState:
        return cls(torch.Generator().manual_seed(seed))

    def state_dict(self) -> dict:
        """Plain containers and tensors (best_state lives in best.pt)."""
        return {"generator": self.generator.get_state(), "epoch": self.epoch, "epoch_start": self.epoch_start,
                "sums": self.sums.state_dict() if self.sums else None, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        """The position and history; the generator's state is restored with the other random states."""
        self.epoch, self.epoch_start = state["epoch"], state["epoch_start"]
        self.sums = EpochSums.from_state(state["sums"]) if state["sums"] else None
        self.history = list(state["history"])


@dataclass
class EpochStats:
    """What one training epoch measured."""
    loss: float
    acc: float | None
    whole: bool  # False: stopped mid-epoch (a stop request or a non-finite loss); the numbers are partial
    # mean over the epoch's steps of the L2 norm of the first and last weight tensor's gradient
    # (before clipping): a first layer that gets orders of magnitude less than the last is the
    # vanishing-gradient picture
    grad_norm_first: float | None = None
    grad_norm_last: float | None = None
    sums: EpochSums | None = None  # where the pass stands, for a mid-epoch checkpoint
    bad_step: int | None = None  # the first step (from 1) whose loss was NaN/Inf (or whose update overflowed)
    step_overflow: bool = False  # the optimizer's update at bad_step did not fit in float32


class RunningSums:
    """An epoch's running sums: tensors on the device, added to at every step without a host sync."""

    def __init__(self, done: EpochSums, device: torch.device) -> None:
        self.loss = torch.tensor(done.loss, device=device)
        self.correct = torch.tensor(done.correct, device=device, dtype=torch.long)
        self.grad_first = torch.tensor(done.grad_first, device=device)
        self.grad_last = torch.tensor(done.grad_last, device=device)
        self.first_bad = torch.zeros((), device=device, dtype=torch.long)  # 0, or the first non-finite step
        self.step, self.seen, self.units, self.grad_steps = done.step, done.seen, done.units, done.grad_steps
        self.bad_step: int | None = None  # found by the per-step check, or an update that overflowed
        self.step_overflow = False

    def watch(self, loss: torch.Tensor) -> None:
        """Remember this step if it is the first whose loss is NaN/Inf, on the device."""
        self.first_bad.masked_fill_((self.first_bad == 0) & ~torch.isfinite(loss), self.step + 1)

    def add_grad_norms(self, ends: list[torch.Tensor]) -> None:
        if ends and ends[0].grad is not None and ends[-1].grad is not None:  # two small kernels, no sync
            self.grad_first.add_(torch.linalg.vector_norm(ends[0].grad, dtype=torch.float32))
            self.grad_last.add_(torch.linalg.vector_norm(ends[-1].grad, dtype=torch.float32))
            self.grad_steps += 1

    def add(self, loss: torch.Tensor, size: int) -> None:
        self.loss += loss.detach() * size
        self.seen += size

    def add_answers(self, out: torch.Tensor, y: torch.Tensor, objective: Objective) -> None:
        if objective.correct is not None:
            self.correct += objective.correct(out.detach(), y)
        self.units += objective.units(y)
        self.step += 1

    def finish(self, n: int, d: Dist, objective: Objective) -> EpochStats:
        """Read the sums (the epoch's host sync) and add them up over the ranks."""
        device = self.loss.device
        read = torch.stack([t.double() for t in (self.loss, self.correct, self.grad_first, self.grad_last,
                                                  self.first_bad)]).tolist()
        loss, right, first, last, bad = read
        if self.step_overflow and 0 < int(bad) < self.bad_step:  # a non-finite loss (deferred check) came first
            self.bad_step, self.step_overflow = int(bad), False
        bad_step = self.bad_step or int(bad) or None
        seen, units = self.seen, self.units
        if d.active:  # this epoch's numbers over all ranks (the gradient norms are the same on every rank)
            loss, right, seen, units = d.sum([loss, right, float(seen), float(units)], device)
            seen, units = int(seen), int(units)
            if self.bad_step is None:  # the deferred check: the ranks agree on the first bad step
                bad_step = d.first(bad_step or 0, device) or None
        sums = EpochSums(self.step, loss, int(right), seen, units, first, last, self.grad_steps)
        acc = sums.correct / units if objective.correct is not None and units else None
        means = (first / self.grad_steps, last / self.grad_steps) if self.grad_steps else (None, None)
        return EpochStats(loss / max(seen, 1), acc, seen == n and bad_step is None, *means, sums=sums,
                          bad_step=bad_step, step_overflow=self.step_overflow)


@dataclass
class EpochStart:
    """Model (unwrapped), optimizer and loss scaler as an epoch found them: what the deferred NaN check
    (``FitSettings.check_every_step=False``) rolls back to."""
    model: dict
    optimizer: dict
    scaler: dict

    @classmethod
    def take(cls, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> EpochStart:
        return cls(snapshot(model.state_dict()), snapshot(optimizer.state_dict()), scaler.state_dict())

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        model.load_state_dict(self.model)
        optimizer.load_state_dict(self.optimizer)
        if self.scaler:
            scaler.load_state_dict(self.scaler)
