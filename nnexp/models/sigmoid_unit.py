"""Sigmoid unit: one neuron o = sigma(w.x + b), differentiable, trained by gradient descent.

The model returns the logit z = w.x + b, shape (B, 1); the sigmoid is applied by
the loss (``loss=auto`` is BCE-with-logits for two classes, which computes
-log sigma(z) stably) and the prediction is o > 0.5, i.e. z > 0. A single unit
draws one straight line, so it cannot solve XOR (the course's point).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nnexp.models.perceptron import TWO_CLASS_DATASETS


class SigmoidUnit(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_outputs: int) -> None:
        super().__init__()
        if num_outputs != 1:
            raise ValueError(f"the sigmoid unit separates two classes with one output, but this setup needs "
                             f"{num_outputs} outputs; use a two-class dataset: {TWO_CLASS_DATASETS}")
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(math.prod(input_shape), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.flatten(x))  # (B, *input_shape) -> (B, 1) logit; sigma(logit) = P(y = 1)
