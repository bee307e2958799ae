"""Rosenblatt's perceptron (1958): one linear unit with a step activation.

The model returns the score s = w.x + b, shape (B, 1). The step y_hat = [s > 0]
is applied where it is needed: by the perceptron criterion (``loss=auto`` picks
it through ``default_loss``) and by accuracy (nnexp/losses.py). With
``optimizer=sgd trainer.batch_size=1`` every SGD step on that criterion is the
perceptron rule, exactly:

    w <- w + lr (y - y_hat) x,    b <- b + lr (y - y_hat)
"""

from __future__ import annotations

import math

import torch
from torch import nn

TWO_CLASS_DATASETS = "dataset=xor, moons or circles (or gaussians with dataset.n_classes=2)"


class Perceptron(nn.Module):
    default_loss = "perceptron"  # Rosenblatt's criterion: its SGD step is the perceptron rule

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int) -> None:
        super().__init__()
        if num_outputs != 1:
            raise ValueError(f"the perceptron separates two classes with one output, but this setup needs "
                             f"{num_outputs} outputs; use a two-class dataset: {TWO_CLASS_DATASETS}")
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(math.prod(input_shape), 1)
        # Classic start w = 0, b = 0: every update is then a sum of lr * (+-x), so the
        # learning rate only scales w and never changes a single prediction.
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.flatten(x))  # (B, *input_shape) -> (B, 1) score s; predict s > 0
