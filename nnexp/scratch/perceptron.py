"""Rosenblatt's perceptron (1958): y_hat = step(w . x + b), then w <- w + lr (y - y_hat) x.

Labels are 0/1 and step(s) = 1 if s > 0 else 0 (the same threshold nnexp
uses for binary accuracy). A right answer leaves w and b alone; a missed 1 adds
lr * x, a false 1 subtracts it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def predict(w: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """w (d,), b (), x (d,) or (N, d) -> 0/1 of the same dtype, () or (N,)."""
    return (x @ w + b > 0).to(w.dtype)


def perceptron_step(w: Tensor, b: Tensor, x: Tensor, y: Tensor | float, lr: float = 1.0) -> tuple[Tensor, Tensor]:
    """One sample x (d,), label y in {0, 1}: returns the new (w, b)."""
    err = y - predict(w, b, x)  # 0 when right, +1 or -1 when wrong
    return w + lr * err * x, b + lr * err


def perceptron_train(x: Tensor, y: Tensor, lr: float = 1.0, epochs: int = 100, w: Tensor | None = None,
                     b: Tensor | None = None) -> tuple[Tensor, Tensor, list[int]]:
    """Epochs of the rule over x (N, d), y (N,) in order; stops after an epoch without mistakes.

    Returns (w, b, mistakes per epoch). It converges iff the data are linearly separable (not XOR).
    """
    w = torch.zeros(x.shape[1], dtype=x.dtype, device=x.device) if w is None else w
    b = torch.zeros((), dtype=x.dtype, device=x.device) if b is None else b
    mistakes: list[int] = []
    for _ in range(epochs):
        wrong = 0
        for xi, yi in zip(x, y, strict=True):
            wrong += int(predict(w, b, xi) != yi)
            w, b = perceptron_step(w, b, xi, yi, lr)
        mistakes.append(wrong)
        if wrong == 0:
            break
    return w, b, mistakes
