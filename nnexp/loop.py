"""fit() and evaluate(): the whole training loop, plain PyTorch, readable top to bottom.

Data already sits on the device as tensors; an epoch is a shuffled permutation
cut into batches. The loop syncs with the device once per epoch (the ``.item()``
calls when metrics are logged), never per step.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from nnexp.data import Data, Split
from nnexp.distributed import SINGLE, Dist
from nnexp.early_stopping import EarlyStopping
from nnexp.losses import Objective, predicted_class


@dataclass
class FitSettings:
    epochs: int
    batch_size: int  # the global batch: under DDP the ranks share each batch
    eval_batch_size: int = 1024
    grad_clip: float | None = None
    l1: float = 0.0
    seed: int = 0
    dist: Dist = SINGLE
    precision: str = "32"  # 32 | bf16 | 16: autocast of forward and loss to that float type
    scaler: torch.amp.GradScaler | None = None  # fp16 on CUDA: scales the loss so small gradients survive
    # > 0: on_step(global step, the step's loss tensor) every that many optimizer steps; what it does
    # with the tensor (``.item()``, a host sync) happens only at those steps
    log_every_n_steps: int = 0
    on_step: Callable[[int, torch.Tensor], None] | None = None
    # classification: count validation answers per (true, predicted) class as each epoch's validation
    # runs, so the confusion matrix at the end needs no pass of its own
    confusion_classes: int | None = None


def autocast(precision: str, device: torch.device):  # noqa: ANN201 - a context manager
    """Forward passes and losses in ``precision`` (a no-op at 32); the weights stay float32."""
    if precision == "32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


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
    sums: EpochSums | None = None  # where the pass stands, for a mid-epoch checkpoint
    bad_step: int | None = None  # the step (from 1) whose loss was NaN/Inf


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
def evaluate(model: nn.Module, split: Split, objective: Objective, batch_size: int = 1024,
             dist: Dist = SINGLE, precision: str = "32",
             counts: torch.Tensor | None = None) -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) of ``model`` on ``split``, in eval mode.

    Under DDP each rank scores every W-th sample and the sums are added up across ranks.
    ``counts``: a (C * C,) long tensor on the split's device that gains this split's
    answers at [true * C + predicted] (the confusion matrix, flat; this rank's share).
    """
    was_training = model.training
    model.eval()
    device = split.x.device
    if dist.active:
        split = Split(split.x[dist.rank::dist.world], split.y[dist.rank::dist.world])
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = len(split)
    units = 0  # answers scored: samples, or tokens for per-step targets
    classes = math.isqrt(counts.numel()) if counts is not None else 0
    for start in range(0, n, batch_size):
        xb, yb = split.x[start:start + batch_size], split.y[start:start + batch_size]
        with autocast(precision, device):
            out = model(xb)
            total_loss += objective.loss(out, yb).float() * len(xb)
        if objective.correct is not None:
            correct += objective.correct(out, yb)
        if counts is not None:
            counts += torch.bincount(yb.reshape(-1) * classes + predicted_class(out).reshape(-1),
                                     minlength=classes * classes)
        units += objective.units(yb)
    model.train(was_training)
    loss_sum, right, n, units = dist.sum([total_loss.item(), float(correct.item()), float(n), float(units)], device)
    acc = right / units if objective.correct is not None else None
    return loss_sum / n, acc


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


def train_one_epoch(
    model: nn.Module,
    split: Split,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    settings: FitSettings,
    generator: torch.Generator,
    stop_requested: Callable[[], bool],
    sums: EpochSums | None = None,
    epoch: int = 1,
) -> EpochStats:
    """One pass over shuffled ``split``; with ``sums`` of a checkpoint, the rest of an interrupted pass.

    The order is drawn from ``generator`` first, so a generator restored to its
    state at the start of the epoch gives the same order and the pass resumes at
    batch ``sums.step``. A non-finite loss stops the pass before its optimizer
    step: the weights stay those of the last good step.
    """
    model.train()
    device = split.x.device
    n = len(split)
    order = torch.randperm(n, generator=generator).to(device)  # CPU generator: same order on any device
    # the L1 penalty acts on weights (matrices, kernels), not on biases or norm scales
    l1_params = [p for p in model.parameters() if p.ndim > 1] if settings.l1 > 0 else []
    params = dict(model.named_parameters())
    ends = [params[name] for name in end_weights(model) or ()]
    done = sums or EpochSums()
    # on the device, summed over steps without a host sync; folded into ``done`` at the end
    first_sum = torch.tensor(done.grad_first, device=device)
    last_sum = torch.tensor(done.grad_last, device=device)
    total_loss = torch.tensor(done.loss, device=device)
    correct = torch.tensor(done.correct, device=device, dtype=torch.long)
    seen, units, grad_steps, step = done.seen, done.units, done.grad_steps, done.step
    bad_step = None
    d = settings.dist
    every = settings.log_every_n_steps if settings.on_step is not None else 0
    steps_before = (epoch - 1) * math.ceil(n / settings.batch_size)  # global steps of the epochs before
    for start in range(step * settings.batch_size, n, settings.batch_size):
        idx = order[start:start + settings.batch_size]
        batch = len(idx)
        if d.active:  # this rank's share of the global batch
            idx = idx[d.rank::d.world]
        xb, yb = split.x[idx], split.y[idx]  # (B, *input_shape), (B,) or (B, T) per step
        with autocast(settings.precision, device):
            out = model(xb)
            # the data loss: what train/loss reports
            loss = (objective.loss(out, yb) if len(idx) else out.sum() * 0.0).float()
        finite = bool(torch.isfinite(loss))
        if (d.any(not finite, device) if d.active else not finite):  # stop before NaN/Inf reaches the weights
            bad_step = step + 1
            total_loss += loss.detach() * len(idx)
            seen += len(idx)
            break
        objective_value = loss
        if d.active:  # DDP averages the ranks' gradients: weight each by its share, so the mean is the batch's
            objective_value = loss * (len(idx) * d.world / batch)
        if l1_params:
            objective_value = objective_value + settings.l1 * sum(p.abs().sum() for p in l1_params)
        optimizer.zero_grad(set_to_none=True)
        scaler = settings.scaler
        if scaler is not None:
            scaler.scale(objective_value).backward()
            scaler.unscale_(optimizer)  # the true gradients, for the norms and clipping below
        else:
            objective_value.backward()
        if ends and ends[0].grad is not None and ends[-1].grad is not None:  # two small kernels, no sync
            first_sum.add_(torch.linalg.vector_norm(ends[0].grad, dtype=torch.float32))
            last_sum.add_(torch.linalg.vector_norm(ends[-1].grad, dtype=torch.float32))
            grad_steps += 1
        if settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)  # skipped when fp16 overflowed; the scale adapts
            scaler.update()
        else:
            optimizer.step()

        total_loss += loss.detach() * len(idx)
        if objective.correct is not None:
            correct += objective.correct(out.detach(), yb)
        seen += len(idx)
        units += objective.units(yb)
        step += 1
        if every and (steps_before + step) % every == 0:
            settings.on_step(steps_before + step, loss.detach())
        if not d.active and stop_requested():  # under DDP the ranks agree on stopping at the epoch's end
            break
    loss_sum, right, seen, units = total_loss.item(), int(correct.item()), seen, units
    if d.active:  # this epoch's numbers over all ranks (the gradient norms are the same on every rank)
        loss_sum, right, seen, units = d.sum([loss_sum, float(right), float(seen), float(units)], device)
        right, seen, units = int(right), int(seen), int(units)
    sums_now = EpochSums(step, loss_sum, right, seen, units, first_sum.item(), last_sum.item(), grad_steps)
    acc = sums_now.correct / units if objective.correct is not None and units else None
    first = last = None
    if grad_steps:
        first, last = sums_now.grad_first / grad_steps, sums_now.grad_last / grad_steps
    return EpochStats(sums_now.loss / max(seen, 1), acc, seen == n and bad_step is None, first, last,
                      sums=sums_now, bad_step=bad_step)


@dataclass
class TrainState:
    """What fit() carries from epoch to epoch beyond model, optimizer, scheduler and early stopping.

    A checkpoint stores it (``state_dict``), so a resumed run continues exactly:
    the same batches in the same order, the epoch in progress finished from the
    batch it stopped at.
    """
    generator: torch.Generator  # draws each epoch's order: CPU, so the order is the same on any device
    epoch: int = 0  # epochs completed
    epoch_start: torch.Tensor | None = None  # generator state when the current epoch drew its order
    sums: EpochSums | None = None  # the epoch in progress, when stopped mid-epoch
    history: list[dict[str, float | None]] = field(default_factory=list)
    best_state: dict | None = None  # weights of the best epoch, for restore_best
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
    state: TrainState | None = None,
) -> FitResult:
    """Train from ``state`` (a new one: from scratch) to ``settings.epochs``, or until stopped."""
    state = state or TrainState.new(settings.seed)
    result = FitResult(status="completed", epochs_run=state.epoch, history=state.history)

    for epoch in range(state.epoch + 1, settings.epochs + 1):  # epochs count from 1
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trains with
        if state.sums is not None:  # finishing an epoch a checkpoint stopped in: draw the same order again
            state.generator.set_state(state.epoch_start)
        else:
            state.epoch_start = state.generator.get_state()
        stats = train_one_epoch(model, data.train, objective, optimizer, settings, state.generator, stop_requested,
                                sums=state.sums, epoch=epoch)
        state.sums = None
        train_loss, train_acc = stats.loss, stats.acc
        if stats.bad_step is not None:
            val_loss, val_acc = evaluate(model, data.val, objective, settings.eval_batch_size, settings.dist,
                                         settings.precision)
            metrics = {"train/loss": train_loss, "val/loss": val_loss, "train/acc": train_acc, "val/acc": val_acc,
                       "lr": lr, "seconds": time.perf_counter() - start}
            result.history.append({"epoch": epoch, **metrics})
            result.epochs_run = epoch
            result.status = "diverged"
            result.message = (f"train/loss became {stats.loss} in epoch {epoch}, step {stats.bad_step}; "
                              f"the weights are those of the step before")
            on_epoch_end(epoch, metrics, False)  # logged, so the curve shows it; never checkpointed
            break
        if not stats.whole:  # a stop was asked for mid-epoch: keep the position, log nothing partial
            state.sums = stats.sums
            result.status = "interrupted"
            result.message = f"interrupted during epoch {epoch} after step {stats.sums.step}"
            break
        counts = None
        if settings.confusion_classes:
            counts = torch.zeros(settings.confusion_classes ** 2, dtype=torch.long, device=data.val.x.device)
        val_loss, val_acc = evaluate(model, data.val, objective, settings.eval_batch_size, settings.dist,
                                     settings.precision, counts=counts)
        state.val_counts = counts
        metrics = {"train/loss": train_loss, "val/loss": val_loss, "train/acc": train_acc,
                   "val/acc": val_acc, "lr": lr, "seconds": time.perf_counter() - start,
                   "grad_norm/first_layer": stats.grad_norm_first, "grad_norm/last_layer": stats.grad_norm_last}
        result.history.append({"epoch": epoch, **metrics})
        result.epochs_run = state.epoch = epoch

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
            state.best_state = copy.deepcopy(_unwrapped(model).state_dict())
            state.best_counts = counts
        on_epoch_end(epoch, metrics, improved)

        if stopper.should_stop:
            result.status = "early_stopped"
            result.message = stopper.reason
            break
        stop = stop_requested()
        if settings.dist.active:  # a signal may reach one rank first: all stop together
            stop = settings.dist.any(stop, data.train.x.device)
        if stop:
            result.status = "interrupted"
            result.message = f"interrupted after epoch {epoch}"
            break

    if state.best_state is not None and result.status in ("completed", "early_stopped"):
        _unwrapped(model).load_state_dict(state.best_state)
        result.restored_best = stopper.best_epoch != result.epochs_run
    return result


def _unwrapped(model: nn.Module) -> nn.Module:
    """The model inside torch.compile's and DistributedDataParallel's wrappers (whose state_dict keys carry
    ``_orig_mod.`` and ``module.``): best.pt and the restored best weights use the plain keys."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)
