"""One row of `nnexp check`'s table, the tolerances rows are judged by, and how a row's error is measured."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

TOL_GRAD = 1e-10  # backprop, LSTM, attention: outputs and gradients
TOL_OPTIM = 1e-12  # parameters after 100 optimizer steps


@dataclass
class Row:
    component: str
    reference: str
    error: float
    tolerance: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return math.isfinite(self.error) and self.error <= self.tolerance


def max_abs_error(ours: Sequence, ref: Sequence) -> float:
    """Max abs difference over pairs of tensors; a missing value or a shape mismatch is inf."""
    worst = 0.0
    for a, b in zip(ours, ref, strict=True):
        if a is None or b is None or a.shape != b.shape:
            return math.inf
        if a.numel():
            worst = max(worst, (a - b).abs().max().item())
    return worst
