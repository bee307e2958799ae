"""Early stopping: remember the best epoch of a monitored metric, stop after ``patience`` bad epochs."""

from __future__ import annotations

import math
from typing import Any

from nnexp.options import training as options


class EarlyStopping:
    """Tracks the best value of ``monitor`` always; only stops the run when ``enabled``.

    An epoch improves on the best when it beats it by more than ``min_delta``
    (lower for ``mode="min"``, higher for ``"max"``). After ``patience`` epochs in
    a row without improvement (Keras semantics, so patience=0 and 1 both stop
    at the first one) ``should_stop`` becomes true; a non-finite monitored value stops at once.
    """

    def __init__(self, monitor: str = "val/loss", mode: str = "min", patience: int = 10,
                 min_delta: float = 0.0, restore_best: bool = True, enabled: bool = True) -> None:
        options.early_stopping(monitor=monitor, mode=mode, patience=patience, min_delta=min_delta)
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best, self.enabled = min_delta, restore_best, enabled
        self.best_value = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.wait = 0
        self.should_stop = False
        self.reason = ""

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Feed one epoch's metrics; returns True when this epoch is the new best."""
        value = metrics[self.monitor]
        if not math.isfinite(value):
            self.should_stop = self.enabled
            self.reason = f"{self.monitor} is {value} at epoch {epoch}"
            return False
        if self._improves(value):
            self.best_value, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        if self.enabled and self.wait >= self.patience:
            self.should_stop = True
            self.reason = (
                f"{self.monitor} did not improve for {self.wait} epochs "
                f"(best {self.best_value:.4g} at epoch {self.best_epoch})"
            )
        return False

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("best_value", "best_epoch", "wait", "should_stop", "reason")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
