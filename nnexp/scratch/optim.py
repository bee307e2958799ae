"""SGD as the course seed writes it, SGD with momentum, and Adam, in plain tensor arithmetic.

They are ``torch.optim.Optimizer`` subclasses, so they take parameter groups,
save and load their state and work with torch's LR schedulers; the base class
only keeps the bookkeeping, every update is written out here. With the same
settings they follow torch.optim.SGD / torch.optim.Adam step for step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from nnexp.scratch.backprop import Layer, backprop

Params = Iterable[Tensor] | Iterable[dict[str, Any]]


class SGD(torch.optim.Optimizer):
    """W <- W - lr * grad W (the seed), with torch's options:

        grad <- grad + weight_decay * W                       (L2, coupled)
        buf  <- grad (first step),  momentum * buf + (1 - dampening) * grad (later)
        grad <- grad + momentum * buf (nesterov)  or  buf     (if momentum > 0)
    """

    def __init__(self, params: Params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"lr={lr}, momentum={momentum}, weight_decay={weight_decay} must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for W in group["params"]:
                if W.grad is None:
                    continue
                grad = W.grad
                if wd != 0:
                    grad = grad + wd * W
                if mu != 0:
                    state = self.state[W]
                    if "momentum_buffer" not in state:
                        buf = grad.clone()
                    else:
                        buf = mu * state["momentum_buffer"] + (1 - group["dampening"]) * grad
                    state["momentum_buffer"] = buf
                    grad = grad + mu * buf if group["nesterov"] else buf
                W.sub_(lr * grad)  # the seed's step: W <- W - alpha grad W
        return loss


class Adam(torch.optim.Optimizer):
    """Adam (Kingma & Ba 2015) with coupled L2 as in torch.optim.Adam:

        g <- grad + weight_decay * W
        m <- beta1 m + (1 - beta1) g,    v <- beta2 v + (1 - beta2) g^2
        W <- W - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"lr={lr}, eps={eps}, weight_decay={weight_decay} must be >= 0")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas={tuple(betas)} must be in [0, 1)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for W in group["params"]:
                if W.grad is None:
                    continue
                g = W.grad
                if wd != 0:
                    g = g + wd * W
                state = self.state[W]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(W), exp_avg_sq=torch.zeros_like(W))
                state["step"] += 1
                t = state["step"]
                m = state["exp_avg"].mul_(beta1).add_((1 - beta1) * g)  # first moment
                v = state["exp_avg_sq"].mul_(beta2).add_((1 - beta2) * g * g)  # second moment
                m_hat = m / (1 - beta1 ** t)  # bias corrections: m and v start at 0
                v_hat = v / (1 - beta2 ** t)
                W.sub_(lr * m_hat / (v_hat.sqrt() + eps))
        return loss


def sgd_per_sample(layers: Sequence[Layer], xs: Tensor, ys: Tensor, loss: str, lr: float,
                   epochs: int = 1) -> list[Layer]:
    """The seed's SGD, literally: for each sample in order, backprop, then a step in every W_j, b_j.

    ``layers`` as in ``backprop``: [(W_j, b_j, f_j)]; returns new layers (the inputs are not changed).
    """
    layers = [(W.clone(), b.clone(), f) for W, b, f in layers]
    for _ in range(epochs):
        for i in range(len(xs)):
            _, grads = backprop(xs[i:i + 1], ys[i:i + 1], layers, loss)  # the gradient of one sample
            layers = [(W - lr * gW, b - lr * gb, f) for (W, b, f), (gW, gb) in zip(layers, grads, strict=True)]
    return layers
