"""fit() and evaluate(): the whole training loop, plain PyTorch, readable top to bottom.

Data already sits on the device as tensors; an epoch is a shuffled permutation
cut into batches. The loop syncs with the device once per epoch (the ``.item()``
calls when metrics are logged), never per step.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from nnexp.data import Data, Split
from nnexp.early_stopping import EarlyStopping
from nnexp.losses import Objective


@dataclass
class FitSettings:
    epochs: int
    batch_size: int
    eval_batch_size: int = 1024
    grad_clip: float | None = None
    l1: float = 0.0
    seed: int = 0


@dataclass
class EpochStats:
    """What one training epoch measured."""
    loss: float
    acc: float | None
    whole: bool  # False: a stop was requested mid-epoch and the numbers are partial
    # mean over the epoch's steps of the L2 norm of the first and last weight tensor's gradient
    # (before clipping): a first layer that gets orders of magnitude less than the last is the
    # vanishing-gradient picture
    grad_norm_first: float | None = None
    grad_norm_last: float | None = None


def end_weights(model: nn.Module) -> tuple[str, str] | None:
    """Names of the first and last weight tensors (matrices, kernels, embeddings) in registration order."""
    names = [name for name, p in model.named_parameters() if p.ndim > 1 and p.requires_grad]
    return (names[0], names[-1]) if names else None


@dataclass
class FitResult:
    status: str  # completed | early_stopped | diverged | interrupted
    epochs_run: int
    history: list[dict[str, float | None]] = field(default_factory=list)
    message: str = ""
    restored_best: bool = False


# Called after every epoch with (epoch, metrics, improved); checkpoints, logging, progress.
EpochHook = Callable[[int, dict, bool], None]


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, objective: Objective, batch_size: int = 1024) -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) of ``model`` on ``split``, in eval mode."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), device=split.x.device, dtype=torch.long)
    n = len(split)
    units = 0  # answers scored: samples, or tokens for per-step targets
    for start in range(0, n, batch_size):
        xb, yb = split.x[start:start + batch_size], split.y[start:start + batch_size]
        out = model(xb)
        total_loss += objective.loss(out, yb) * len(xb)
        if objective.correct is not None:
            correct += objective.correct(out, yb)
        units += objective.units(yb)
    model.train(was_training)
    acc = correct.item() / units if objective.correct is not None else None
    return total_loss.item() / n, acc


def train_one_epoch(
    model: nn.Module,
    split: Split,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    settings: FitSettings,
    generator: torch.Generator,
    stop_requested: Callable[[], bool],
) -> EpochStats:
    """One pass over shuffled ``split``."""
    model.train()
    device = split.x.device
    n = len(split)
    order = torch.randperm(n, generator=generator).to(device)  # CPU generator: same order on any device
    # the L1 penalty acts on weights (matrices, kernels), not on biases or norm scales
    l1_params = [p for p in model.parameters() if p.ndim > 1] if settings.l1 > 0 else []
    params = dict(model.named_parameters())
    ends = [params[name] for name in end_weights(model) or ()]
    first_sum, last_sum = torch.zeros((), device=device), torch.zeros((), device=device)  # summed over steps
    steps = 0
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = units = 0
    for start in range(0, n, settings.batch_size):
        idx = order[start:start + settings.batch_size]
        xb, yb = split.x[idx], split.y[idx]  # (B, *input_shape), (B,) or (B, T) per step
        out = model(xb)
        loss = objective.loss(out, yb)  # the data loss: what train/loss reports
        objective_value = loss
        if l1_params:
            objective_value = loss + settings.l1 * sum(p.abs().sum() for p in l1_params)
        optimizer.zero_grad(set_to_none=True)
        objective_value.backward()
        if ends and ends[0].grad is not None and ends[-1].grad is not None:  # two small kernels, no sync
            first_sum.add_(torch.linalg.vector_norm(ends[0].grad, dtype=torch.float32))
            last_sum.add_(torch.linalg.vector_norm(ends[-1].grad, dtype=torch.float32))
            steps += 1
        if settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()

        total_loss += loss.detach() * len(idx)
        if objective.correct is not None:
            correct += objective.correct(out.detach(), yb)
        seen += len(idx)
        units += objective.units(yb)
        if stop_requested():
            break
    acc = correct.item() / units if objective.correct is not None else None
    first = last = None
    if steps:
        first, last = (torch.stack([first_sum, last_sum]) / steps).tolist()
    return EpochStats(total_loss.item() / seen, acc, seen == n, first, last)


def fit(
    model: nn.Module,
    data: Data,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    scheduler: object | None,
    settings: FitSettings,
    stopper: EarlyStopping,
    on_epoch_end: EpochHook = lambda epoch, metrics, improved: None,
    stop_requested: Callable[[], bool] = lambda: False,
) -> FitResult:
    generator = torch.Generator().manual_seed(settings.seed)
    result = FitResult(status="completed", epochs_run=0)
    best_state: dict | None = None

    for epoch in range(1, settings.epochs + 1):  # epochs count from 1
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trains with
        stats = train_one_epoch(model, data.train, objective, optimizer, settings, generator, stop_requested)
        train_loss, train_acc = stats.loss, stats.acc
        if not stats.whole:  # a signal arrived mid-epoch: this epoch's numbers are partial, do not log them
            result.status = "interrupted"
            result.message = f"interrupted during epoch {epoch}"
            break
        val_loss, val_acc = evaluate(model, data.val, objective, settings.eval_batch_size)
        metrics = {"train/loss": train_loss, "val/loss": val_loss, "train/acc": train_acc,
                   "val/acc": val_acc, "lr": lr, "seconds": time.perf_counter() - start,
                   "grad_norm/first_layer": stats.grad_norm_first, "grad_norm/last_layer": stats.grad_norm_last}
        result.history.append({"epoch": epoch, **metrics})
        result.epochs_run = epoch

        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            result.status = "diverged"
            bad = "train/loss" if not math.isfinite(train_loss) else "val/loss"
            result.message = f"{bad} became {metrics[bad]} in epoch {epoch}"
            on_epoch_end(epoch, metrics, False)  # logged, so the curve shows it; never checkpointed
            break

        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_loss)
            else:
                scheduler.step()
        improved = stopper.update(epoch, metrics)
        if improved and stopper.enabled and stopper.restore_best:
            best_state = copy.deepcopy(model.state_dict())
        on_epoch_end(epoch, metrics, improved)

        if stopper.should_stop:
            result.status = "early_stopped"
            result.message = stopper.reason
            break
        if stop_requested():
            result.status = "interrupted"
            result.message = f"interrupted after epoch {epoch}"
            break

    if best_state is not None and result.status in ("completed", "early_stopped"):
        model.load_state_dict(best_state)
        result.restored_best = stopper.best_epoch != result.epochs_run
    return result
