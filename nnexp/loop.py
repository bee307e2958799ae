"""fit() and evaluate(): the whole training loop, plain PyTorch, readable top to bottom.

Data already sits on the device as tensors; an epoch is a shuffled permutation
cut into batches. The epoch's running sums stay on the device and are read once,
at its end (and at the steps ``log_every_n_steps`` asks for).

A NaN/Inf loss never reaches a checkpoint. On the CPU, where reading a number
costs nothing, each step's loss is read before its optimizer step, and the run
stops with the weights of the step before. On a GPU that read would make the host
wait for the device at every step; there the first non-finite step is remembered
on the device, found when the epoch's sums are read, and the epoch is undone:
model, optimizer and loss scaler go back to their state at its start.
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

from nnexp import step_gradients
from nnexp.anomaly import AnomalyWatch
from nnexp.data import Data, Split
from nnexp.distributed import SINGLE, Dist
from nnexp.early_stopping import EarlyStopping
from nnexp.losses import Objective, predicted_class
from nnexp.record import Status
from nnexp.train_state import EpochStart, EpochStats, EpochSums, RunningSums, TrainState


def _pass_through_scaler() -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cuda", enabled=False)


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
    # fp16 on CUDA: scales the loss so small gradients survive; otherwise disabled, a pass-through
    scaler: torch.amp.GradScaler = field(default_factory=_pass_through_scaler)
    # > 0: on_step(global step, the step's loss tensor) every that many optimizer steps; what it does
    # with the tensor (``.item()``, a host sync) happens only at those steps
    log_every_n_steps: int = 0
    on_step: Callable[[int, torch.Tensor], None] | None = None
    # classification: count validation answers per (true, predicted) class as each epoch's validation
    # runs, so the confusion matrix at the end needs no pass of its own
    confusion_classes: int | None = None
    # True: read each step's loss before its optimizer step (the CPU: free). False: no host sync per step;
    # the first non-finite step is found at the epoch's end and the epoch undone (GPUs)
    check_every_step: bool = True
    # trainer.detect_anomaly: hooks that note where the first NaN/Inf came from (entered around fit() by the
    # run); a step that makes one ends the run as diverged (check_every_step is on with it)
    anomaly: AnomalyWatch | None = None


def autocast(precision: str, device: torch.device):  # noqa: ANN201 - a context manager
    """Forward passes and losses in ``precision`` (a no-op at 32); the weights stay float32."""
    if precision == "32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def end_weights(model: nn.Module) -> tuple[str, str] | None:
    """Names of the first and last weight tensors (matrices, kernels, embeddings) in registration order."""
    names = [name for name, p in model.named_parameters() if p.ndim > 1 and p.requires_grad]
    return (names[0], names[-1]) if names else None


@dataclass
class FitResult:
    status: Status  # completed, early_stopped, diverged or interrupted (never failed: that is an exception)
    epochs_run: int
    history: list[dict[str, float | None]] = field(default_factory=list)
    message: str = ""
    restored_best: bool = False


# Called after every epoch with (epoch, metrics, improved); checkpoints, logging, progress. The last epoch of a
# diverged run carries metrics["diverged"], the message.
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


def _non_finite(loss: torch.Tensor, d: Dist, anomaly: AnomalyWatch | None = None) -> bool:
    """Is this step's loss NaN/Inf (on any rank), or did ``anomaly`` see one inside the model? Reads the loss:
    a host sync, free on the CPU."""
    bad = not bool(torch.isfinite(loss)) or (anomaly is not None and anomaly.found is not None)
    return d.any(bad, loss.device) if d.active else bad


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
    batch ``sums.step``. A non-finite loss ends the pass before its optimizer step
    when ``settings.check_every_step``; otherwise it is reported at the end (``bad_step``).
    """
    model.train()
    device, d, scaler = split.x.device, settings.dist, settings.scaler
    n, size = len(split), settings.batch_size
    order = torch.randperm(n, generator=generator).to(device)  # CPU generator: same order on any device
    # the L1 penalty acts on weights (matrices, kernels), not on biases or norm scales
    l1_params = [p for p in model.parameters() if p.ndim > 1] if settings.l1 > 0 else []
    params = dict(model.named_parameters())
    ends = [params[name] for name in end_weights(model) or ()]
    run = RunningSums(sums or EpochSums(), device)
    every = settings.log_every_n_steps if settings.on_step is not None else 0
    steps_before = (epoch - 1) * math.ceil(n / size)  # global steps of the epochs before
    for start in range(run.step * size, n, size):
        idx = order[start:start + size]
        batch = len(idx)
        if d.active:  # this rank's share of the global batch
            idx = idx[d.rank::d.world]
        xb, yb = split.x[idx], split.y[idx]  # (B, *input_shape), (B,) or (B, T) per step
        with autocast(settings.precision, device):
            out = model(xb)
            # the data loss: what train/loss reports
            loss = (objective.loss(out, yb) if len(idx) else out.sum() * 0.0).float()
        if not settings.check_every_step:
            run.watch(loss)
        elif _non_finite(loss, d, settings.anomaly):  # stop before NaN/Inf reaches the weights
            run.bad_step = run.step + 1
            run.add(loss, len(idx))
            break
        objective_value = loss
        if d.active:  # DDP averages the ranks' gradients: weight each by its share, so the mean is the batch's
            objective_value = loss * (len(idx) * d.world / batch)
        if l1_params:
            objective_value = objective_value + settings.l1 * sum(p.abs().sum() for p in l1_params)
        optimizer.zero_grad(set_to_none=True)
        try:
            scaler.scale(objective_value).backward()
        except RuntimeError as exc:  # trainer.detect_anomaly: torch names the backward function that made a NaN
            if settings.anomaly is None or not settings.anomaly.backward_failed(exc):
                raise
            run.bad_step = run.step + 1
            run.add(loss, len(idx))
            break
        scaler.unscale_(optimizer)  # the true gradients (fp16), for the norms and clipping below
        run.add_grad_norms(ends)
        if settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        try:
            scaler.step(optimizer)  # fp16: skipped when the gradients overflowed, and the scale adapts
        except RuntimeError as exc:  # torch refuses an update beyond float32 (optimizer.lr=1e300): the weights
            if "without overflow" not in str(exc):  # would be Inf, as a loss that became Inf would make them
                raise
            run.bad_step, run.step_overflow = run.step + 1, True
            run.add(loss, len(idx))
            break
        scaler.update()
        run.add(loss, len(idx))
        run.add_answers(out, yb, objective)
        if every and (steps_before + run.step) % every == 0:
            settings.on_step(steps_before + run.step, loss.detach())
        if not d.active and stop_requested():  # under DDP the ranks agree on stopping at the epoch's end
            break
    return run.finish(n, d, objective)


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
    result = FitResult(status=Status.COMPLETED, epochs_run=state.epoch, history=state.history)

    for epoch in range(state.epoch + 1, settings.epochs + 1):  # epochs count from 1
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trains with
        if state.sums is not None:  # finishing an epoch a checkpoint stopped in: draw the same order again
            state.generator.set_state(state.epoch_start)
        else:
            state.epoch_start = state.generator.get_state()
        undo = None if settings.check_every_step else EpochStart.take(_unwrapped(model), optimizer, settings.scaler)
        stats = train_one_epoch(model, data.train, objective, optimizer, settings, state.generator, stop_requested,
                                sums=state.sums, epoch=epoch)
        state.sums = None
        diverged = None
        if stats.bad_step is not None:
            if undo is not None:  # steps after the bad one changed the weights: back to the epoch's start
                undo.restore(_unwrapped(model), optimizer, settings.scaler)
            diverged = _bad_step(stats, epoch, lr, settings.anomaly, undone=undo is not None)
        elif not stats.whole:  # a stop was asked for mid-epoch: keep the position, log nothing partial
            state.sums = stats.sums
            result.status = Status.INTERRUPTED
            result.message = f"interrupted during epoch {epoch} after step {stats.sums.step}"
            break
        counts = None
        if settings.confusion_classes:
            counts = torch.zeros(settings.confusion_classes ** 2, dtype=torch.long, device=data.val.x.device)
        val_loss, val_acc = evaluate(model, data.val, objective, settings.eval_batch_size, settings.dist,
                                     settings.precision, counts=counts)
        state.val_counts = counts
        whole = diverged is None  # the gradient norms of a pass cut short by a bad step mean nothing
        metrics = {"train/loss": stats.loss, "val/loss": val_loss, "train/acc": stats.acc,
                   "val/acc": val_acc, "lr": lr, "seconds": time.perf_counter() - start,
                   "grad_norm/first_layer": stats.grad_norm_first if whole else None,
                   "grad_norm/last_layer": stats.grad_norm_last if whole else None}
        if step_gradients.measures(_unwrapped(model)):  # recurrent: how much gradient reaches step 1
            metrics["grad_norm/first_step"] = (
                float(step_gradients.step_norms(_unwrapped(model), data.val, objective)[0]) if whole else None)
        result.history.append({"epoch": epoch, **metrics})
        result.epochs_run = state.epoch = epoch
        if diverged is None and not (math.isfinite(stats.loss) and math.isfinite(val_loss)):
            bad = "train/loss" if not math.isfinite(stats.loss) else "val/loss"
            diverged = f"{bad} became {metrics[bad]} in epoch {epoch}"
        if diverged is not None:
            result.status, result.message = Status.DIVERGED, diverged
            # logged, so the curve shows it; never checkpointed (its numbers may all be finite: an update that
            # overflowed was refused, yet the epoch is over)
            on_epoch_end(epoch, {**metrics, "diverged": diverged}, False)
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
            result.status = Status.EARLY_STOPPED
            result.message = stopper.reason
            break
        stop = stop_requested()
        if settings.dist.active:  # a signal may reach one rank first: all stop together
            stop = settings.dist.any(stop, data.train.x.device)
        if stop:
            result.status = Status.INTERRUPTED
            result.message = f"interrupted after epoch {epoch}"
            break

    if state.best_state is not None and result.status.trained:
        _unwrapped(model).load_state_dict(state.best_state)
        result.restored_best = stopper.best_epoch != result.epochs_run
    return result


def _bad_step(stats: EpochStats, epoch: int, lr: float, anomaly: AnomalyWatch | None, undone: bool) -> str:
    """Why a step ended the run, where, and which weights it ends with."""
    weights = f"those of the end of epoch {epoch - 1}" if undone else "those of the step before"
    where = f"epoch {epoch}, step {stats.bad_step}; the weights are {weights}"
    if stats.step_overflow:
        return f"the optimizer's update overflowed float32 (lr={lr:g}) in {where}"
    if anomaly is not None and anomaly.found is not None:  # "... came from model.net.fc2 (Linear) in the forward pass"
        return f"{anomaly.found} of {where}"
    if anomaly is not None:  # watched, and every module's output was finite
        return f"train/loss became {stats.loss} (every module's output was finite: the loss made it) in {where}"
    return f"train/loss became {stats.loss} in {where}"


def _unwrapped(model: nn.Module) -> nn.Module:
    """The model inside torch.compile's and DistributedDataParallel's wrappers (whose state_dict keys carry
    ``_orig_mod.`` and ``module.``): best.pt and the restored best weights use the plain keys."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)
