"""Optimizer factories for conf/optimizer/*.yaml: ``impl`` picks torch.optim or nnexp/scratch/optim.py.

run.py calls them with parameter groups, e.g. ``sgd(params=[{"params": weights},
{"params": biases, "weight_decay": 0.0}], lr=0.05)``; both implementations take
the same groups and follow the same update rule step for step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from nnexp.options.training import optimizer_impl

Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def sgd(params: Params, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
        impl: str = "torch") -> torch.optim.Optimizer:
    """SGD, W <- W - lr * grad (the course seed), optionally with (Nesterov) momentum and L2."""
    optimizer_impl(impl)  # our one option; the others are torch's (nnexp/config.py's rule table names them)
    if impl == "scratch":
        from nnexp.scratch.optim import SGD

        return SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)


def adam(params: Params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, impl: str = "torch") -> torch.optim.Optimizer:
    """Adam with coupled L2 (weight_decay adds to the gradient), as torch.optim.Adam."""
    optimizer_impl(impl)
    if impl == "scratch":
        from nnexp.scratch.optim import Adam

        return Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
