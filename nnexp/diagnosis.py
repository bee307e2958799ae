"""Label a run from its curves alone: underfit, good_fit, overfit, diverged or plateau.

Each label comes with the reason in numbers and a suggestion from the course's
toolbox (smaller model, weight penalty, early stopping, dropout, learning rate).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# thresholds, relative to the loss values they compare
OVERFIT_RISE = 0.05  # val/loss ends this much above its minimum ...
OVERFIT_TRAIN_FALL = 0.10  # ... while train/loss fell at least this much after that minimum
PLATEAU_CHANGE = 0.05  # train/loss never got this far below its first value
UNDERFIT_ACC = 0.90  # final train accuracy below this: the model does not fit its own data
STILL_FALLING = 0.10  # train and val loss fell this much over the last quarter of the run
SOLVED_ACC = 0.99  # a run this accurate on its training data is neither stuck nor underfit ...
SOLVED_LOSS = 1e-3  # ... nor is one (without accuracy) whose training loss got this close to zero


@dataclass(frozen=True)
class Diagnosis:
    label: str
    reason: str
    suggestion: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


_CURES = (
    ("early_stopping", "early stopping (regularizer=early_stopping)"),
    ("weight_decay", "a weight penalty (regularizer=l2 or regularizer=l1)"),
    ("dropout", "dropout (regularizer=dropout)"),
    ("capacity", "a smaller model (e.g. model.hidden=[64])"),
)


def diagnose(history: list[dict[str, Any]], status: str = "completed",
             active: frozenset[str] | set[str] = frozenset()) -> Diagnosis:
    """``history``: one dict per epoch with ``epoch``, ``train/loss``, ``val/loss`` (and optionally acc).

    ``active``: cures already in use (early_stopping, weight_decay, dropout), so
    the suggestion names the ones not tried yet.
    """
    if not history:
        return Diagnosis("underfit", "no epoch finished", "train for at least one epoch (trainer.epochs)")
    train = [h["train/loss"] for h in history]
    val = [h["val/loss"] for h in history]
    epochs = [h["epoch"] for h in history]
    # relative changes of a loss near zero mean nothing: a solved run is judged on overfitting alone
    train_acc = history[-1].get("train/acc")
    solved = train_acc >= SOLVED_ACC if train_acc is not None else min(train) < SOLVED_LOSS
    # the first rule that applies labels the run
    return (_diverged(train, val, epochs, status)
            or _overfit(train, val, epochs, active)
            or _plateau(train, solved)
            or _underfit_accuracy(train_acc, epochs)
            or _still_falling(train, val, solved)
            or _good_fit(train, val, epochs))


def _fell(before: float, after: float) -> float:
    """How much a loss fell from ``before`` to ``after``, relative to ``before``."""
    return (before - after) / max(abs(before), 1e-12)


def _val_minimum(val: list[float]) -> tuple[int, float]:
    """The epoch index of the val/loss minimum, and how far the last val/loss rose above it (relative)."""
    i_min = min(range(len(val)), key=val.__getitem__)
    return i_min, (val[-1] - val[i_min]) / max(abs(val[i_min]), 1e-12)


def _diverged(train: list[float], val: list[float], epochs: list, status: str) -> Diagnosis | None:
    bad = next((i for i, (t, v) in enumerate(zip(train, val, strict=True)) if not (math.isfinite(t) and math.isfinite(v))), None)
    if status == "diverged" or bad is not None:
        # diverged with finite curves: an optimizer update that overflowed float32 was refused (nnexp/loop.py)
        why = f"the loss became NaN/Inf in epoch {epochs[bad]}" if bad is not None else \
            f"training diverged in epoch {epochs[-1]}"
        return Diagnosis("diverged", why,
                         "lower the learning rate (optimizer.lr) or clip gradients (trainer.grad_clip=1.0)")
    return None


def _overfit(train: list[float], val: list[float], epochs: list,
             active: frozenset[str] | set[str]) -> Diagnosis | None:
    i_min, rise = _val_minimum(val)
    train_fall = _fell(train[i_min], train[-1])
    if not (i_min < len(val) - 1 and rise > OVERFIT_RISE and train_fall > OVERFIT_TRAIN_FALL):
        return None
    reason = (f"val/loss minimum {val[i_min]:.3g} at epoch {epochs[i_min]}, {rise:+.0%} by epoch {epochs[-1]} "
              f"while train/loss fell {train_fall:.0%}")
    todo = [text for key, text in _CURES if key not in active]
    if "early_stopping" in active:
        suggestion = (f"early stopping kept the weights of epoch {epochs[i_min]}; to generalize better try "
                      + ", ".join(todo))
    else:
        suggestion = "try " + ", ".join(todo)
    return Diagnosis("overfit", reason, suggestion)


def _plateau(train: list[float], solved: bool) -> Diagnosis | None:
    if not solved and len(train) >= 3 and _fell(train[0], min(train)) < PLATEAU_CHANGE:
        return Diagnosis(
            "plateau",
            f"train/loss stayed within {PLATEAU_CHANGE:.0%} of {train[0]:.3g} for {len(train)} epochs",
            "the optimizer is stuck: change the learning rate (optimizer.lr), try optimizer=adam, "
            "or relu instead of a saturating sigmoid (model.activation=relu)",
        )
    return None


def _underfit_accuracy(train_acc: float | None, epochs: list) -> Diagnosis | None:
    if train_acc is not None and train_acc < UNDERFIT_ACC:
        return Diagnosis("underfit", f"train/acc is only {train_acc:.2f} at epoch {epochs[-1]}",
                         "more capacity (a bigger model.hidden), more epochs (trainer.epochs) "
                         "or a higher learning rate (optimizer.lr)")
    return None


def _still_falling(train: list[float], val: list[float], solved: bool) -> Diagnosis | None:
    """Underfit too: both losses were still falling over the last quarter of the run."""
    q = max(1, len(train) // 4)
    if (not solved and len(train) >= 4 and _fell(train[-1 - q], train[-1]) > STILL_FALLING
            and _fell(val[-1 - q], val[-1]) > STILL_FALLING):
        return Diagnosis("underfit",
                         f"train/loss and val/loss both still fell over the last {q} epochs "
                         f"(val/loss {val[-1 - q]:.3g} -> {val[-1]:.3g})",
                         "train longer (trainer.epochs) or raise the learning rate (optimizer.lr)")
    return None


def _good_fit(train: list[float], val: list[float], epochs: list) -> Diagnosis:
    i_min, rise = _val_minimum(val)
    return Diagnosis("good_fit",
                     f"val/loss ends at {val[-1]:.3g}, {rise:+.0%} from its minimum {val[i_min]:.3g} at epoch "
                     f"{epochs[i_min]}; gap val - train = {val[-1] - train[-1]:.3g}",
                     "nothing to fix; compare seeds (trainer.seed=0,1,2 with -m) before trusting small differences")
