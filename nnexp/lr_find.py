"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", 3.3), as
fastai's and Lightning's ``lr_find`` run it.

One optimizer step per batch while the lr grows geometrically from ``start`` to ``end``; each step's loss goes
into an exponential moving average with bias correction (fastai's smoothing). The test ends after ``steps``
batches (cycling through epochs when the training split has fewer), or as soon as the smoothed loss exceeds
``stop_factor`` times its minimum or a loss is NaN/Inf. The suggestion is the lr where the smoothed loss falls
fastest: the steepest negative slope of the smoothed loss against log10(lr).

The steps are the loop's own (``loop.train_one_epoch``: autocast, the L1 penalty, gradient clipping, the loss
scaler, the NaN check), on deep copies of the model and the optimizer: the run's own stay as they were built.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from nnexp.build import Components
from nnexp.distributed import SINGLE
from nnexp.loop import train_one_epoch
from nnexp.train_state import TrainState


@dataclass
class Curve:
    """What a range test measured: one entry per step taken (from step 1)."""
    lrs: list[float] = field(default_factory=list)  # the lr of each step
    losses: list[float] = field(default_factory=list)  # that step's training loss (the data loss, its batch)
    smoothed: list[float] = field(default_factory=list)
    stopped: str = ""  # why it ended, in words
    suggestion: int | None = None  # index of the suggested lr; None: the smoothed loss never fell

    @property
    def suggested_lr(self) -> float | None:
        return None if self.suggestion is None else self.lrs[self.suggestion]


def schedule(start: float, end: float, steps: int) -> list[float]:
    """``steps`` rates from ``start`` to ``end``, each the one before times the same factor."""
    ratio = end / start
    return [start * ratio ** (i / (steps - 1)) for i in range(steps)]


def steepest(lrs: list[float], smoothed: list[float], skip_start: int = 10) -> int | None:
    """The index where ``smoothed`` falls fastest against log10(lr), leaving out the first ``skip_start`` steps
    (an average of a few batches is mostly their noise) and the last (its slope is one-sided: where the test
    stopped); None when fewer than 3 steps are left or the loss rises everywhere there."""
    if len(smoothed) - 1 - skip_start < 3:
        return None
    slopes = np.gradient(np.asarray(smoothed, dtype=float), np.log10(np.asarray(lrs, dtype=float)))
    window = slopes[skip_start:len(slopes) - 1]
    best = int(np.argmin(window))
    return skip_start + best if window[best] < 0 else None


class _Steps:
    """The test's state between steps: ``on_step`` records a step and sets the next step's lr, and the loop asks
    ``__call__`` whether to stop (FitSettings.on_step and stop_requested of train_one_epoch)."""

    def __init__(self, optimizer: torch.optim.Optimizer, lrs: list[float], stop_factor: float, smoothing: float,
                 stop_requested: Callable[[], bool]) -> None:
        self.optimizer, self.lrs, self.stop_factor, self.beta = optimizer, lrs, stop_factor, smoothing
        self.stop_requested = stop_requested  # a signal (nnexp/signals.py StopSignals), or never
        self.curve = Curve()
        self.average, self.minimum, self.done = 0.0, math.inf, False
        self.set_lr(lrs[0])

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:  # every group: weights and the undecayed biases alike
            group["lr"] = lr

    def on_step(self, step: int, loss: torch.Tensor) -> None:
        value = float(loss)  # a host sync per step: a few hundred steps, read once each
        curve, i = self.curve, len(self.curve.losses)
        if not math.isfinite(value):  # not recorded: the CPU's per-step check stops before it, so any device
            self.finish(f"the loss became {value} at lr {self.lrs[i]:.3g}")  # gives the same curve
            return
        curve.lrs.append(self.lrs[i])
        curve.losses.append(value)
        self.average = self.beta * self.average + (1 - self.beta) * value
        smoothed = self.average / (1 - self.beta ** (i + 1))  # the bias correction: the average starts at 0
        curve.smoothed.append(smoothed)
        self.minimum = min(self.minimum, smoothed)
        if smoothed > self.stop_factor * self.minimum:
            self.finish(f"the smoothed loss exceeded {self.stop_factor:g}x its minimum at lr {self.lrs[i]:.3g}")
        elif i + 1 == len(self.lrs):
            self.finish(f"all {len(self.lrs)} steps done")
        else:
            self.set_lr(self.lrs[i + 1])

    def finish(self, why: str) -> None:
        self.curve.stopped, self.done = why, True

    def __call__(self) -> bool:
        if not self.done and self.stop_requested():
            self.finish(f"interrupted after {len(self.curve.losses)} steps")
        return self.done


def range_test(parts: Components, start: float, end: float, steps: int, stop_factor: float = 4.0,
               smoothing: float = 0.98, skip_start: int = 10,
               stop_requested: Callable[[], bool] = lambda: False) -> Curve:
    """Run the test on copies of ``parts``' model and optimizer; the batches come in the order training's
    would (``trainer.seed``), so the same seed gives the same curve."""
    # one deepcopy for both: the copied optimizer steps the copied model's parameters (and its state follows them)
    model, optimizer = copy.deepcopy((parts.model, parts.optimizer))
    test = _Steps(optimizer, schedule(start, end, steps), stop_factor, smoothing, stop_requested)
    settings = replace(parts.settings, scaler=copy.deepcopy(parts.settings.scaler), dist=SINGLE,
                       log_every_n_steps=1, on_step=test.on_step, confusion_classes=None)
    generator = TrainState.new(settings.seed).generator
    epoch = 0
    while not test():
        epoch += 1
        stats = train_one_epoch(model, parts.data.train, parts.objective, optimizer, settings, generator, test,
                                epoch=epoch)
        if stats.bad_step is not None and not test.done:  # a loss or update the loop refused, before its step
            lr = test.lrs[len(test.curve.losses)]
            test.finish(f"the optimizer's update overflowed float32 at lr {lr:.3g}" if stats.step_overflow
                        else f"the loss became {stats.loss} at lr {lr:.3g}")
    curve = test.curve
    curve.suggestion = steepest(curve.lrs, curve.smoothed, skip_start)
    return curve
