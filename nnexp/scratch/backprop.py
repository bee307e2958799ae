"""Backpropagation exactly as the course seed writes it, with no autograd.

    z_1 = x;   z_{i+1}, z'_{i+1} = f_i(W_i z_i + b_i), f'_i(W_i z_i + b_i)     i = 1..k-1
    L = l(z_k, y);   g_k = dl/dz_k
    g_i = W_i^T (g_{i+1} o z'_{i+1}),   grad b_i = g_{i+1} o z'_{i+1},   grad W_i = (g_{i+1} o z'_{i+1}) z_i^T

Batched: x is (B, d) and each z_i is (B, n_i), one sample per row; W_i is
(n_{i+1}, n_i) as in torch.nn.Linear, so W_i z_i is ``z_i @ W_i.T``. Losses are
the batch mean (torch's default), so g_k already carries the 1/B and the
per-sample gradients are summed over the rows:
grad W_i = delta^T z_i (n_{i+1}, n_i), grad b_i = sum of the rows of delta.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

# name -> a -> (f(a), f'(a)), both elementwise on the pre-activation a = W z + b


def _sigmoid(a: Tensor) -> tuple[Tensor, Tensor]:
    z = 1.0 / (1.0 + torch.exp(-a))
    return z, z * (1.0 - z)


def _tanh(a: Tensor) -> tuple[Tensor, Tensor]:
    z = torch.tanh(a)
    return z, 1.0 - z * z


def _relu(a: Tensor) -> tuple[Tensor, Tensor]:
    return a.clamp(min=0), (a > 0).to(a.dtype)  # f'(0) = 0, as torch


def _identity(a: Tensor) -> tuple[Tensor, Tensor]:
    return a, torch.ones_like(a)


ACTIVATIONS: dict[str, Callable[[Tensor], tuple[Tensor, Tensor]]] = {
    "sigmoid": _sigmoid, "tanh": _tanh, "relu": _relu, "identity": _identity,
}

# name -> (z_k, y) -> (L, dL/dz_k); L is the mean over the batch as in torch.nn.functional


def _mse(z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    diff = z - y.reshape(z.shape).to(z.dtype)  # (B, n)
    return (diff * diff).mean(), 2.0 * diff / diff.numel()


def _bce_with_logits(z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """l = -y log s(z) - (1-y) log(1 - s(z)) = max(z, 0) - y z + log(1 + exp(-|z|)); dl/dz = s(z) - y."""
    y = y.reshape(z.shape).to(z.dtype)
    losses = z.clamp(min=0) - y * z + torch.log1p(torch.exp(-z.abs()))
    return losses.mean(), (_sigmoid(z)[0] - y) / z.numel()


def _cross_entropy(z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """z (B, C) logits, y (B,) class indices: l = logsumexp(z) - z_y; dl/dz = softmax(z) - onehot(y)."""
    shifted = z - z.max(dim=1, keepdim=True).values  # (B, C), for a stable exp
    log_sum = torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))  # (B, 1)
    log_p = shifted - log_sum  # log-softmax (B, C)
    picked = y.long().reshape(-1, 1)  # (B, 1)
    onehot = torch.zeros_like(z).scatter_(1, picked, 1.0)
    batch = z.shape[0]
    return -log_p.gather(1, picked).sum() / batch, (torch.exp(log_p) - onehot) / batch


LOSSES: dict[str, Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]] = {
    "mse": _mse, "bce": _bce_with_logits, "cross_entropy": _cross_entropy,
}

Layer = tuple[Tensor, Tensor, str]  # (W_i (n_{i+1}, n_i), b_i (n_{i+1},), f_i)


def forward(x: Tensor, layers: Sequence[Layer]) -> tuple[list[Tensor], list[Tensor]]:
    """x (B, d) -> zs = [z_1 .. z_k], dzs = [z'_2 .. z'_k] (dzs[i] belongs to layer i's output)."""
    zs, dzs = [x], []
    for W, b, f in layers:
        if f not in ACTIVATIONS:
            raise ValueError(f"activation {f!r} is not one of: {', '.join(ACTIVATIONS)}")
        z, dz = ACTIVATIONS[f](zs[-1] @ W.T + b)  # (B, n_{i+1}) each
        zs.append(z)
        dzs.append(dz)
    return zs, dzs


def backward(g_k: Tensor, zs: Sequence[Tensor], dzs: Sequence[Tensor],
             weights: Sequence[Tensor]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """The seed's backward loop, i = k-1 .. 1. Returns g_1 (B, d), [grad W_i], [grad b_i] in layer order."""
    g = g_k  # (B, n_k)
    grad_w: list[Tensor] = [None] * len(weights)  # type: ignore[list-item]
    grad_b: list[Tensor] = [None] * len(weights)  # type: ignore[list-item]
    for i in reversed(range(len(weights))):
        delta = g * dzs[i]  # g_{i+1} o z'_{i+1}: (B, n_{i+1})
        grad_b[i] = delta.sum(dim=0)  # (n_{i+1},)
        grad_w[i] = delta.T @ zs[i]  # (n_{i+1}, n_i): sum over samples of delta z_i^T
        g = delta @ weights[i]  # W_i^T delta for every row: (B, n_i)
    return g, grad_w, grad_b


def backprop(x: Tensor, y: Tensor, layers: Sequence[Layer], loss: str) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """Backpropagation(x, y, {W_i, b_i, f_i}, l): returns L and [(grad W_i, grad b_i)] for i = 1..k-1."""
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r} is not one of: {', '.join(LOSSES)}")
    zs, dzs = forward(x, layers)
    L, g_k = LOSSES[loss](zs[-1], y)
    _, grad_w, grad_b = backward(g_k, zs, dzs, [W for W, _, _ in layers])
    return L, list(zip(grad_w, grad_b, strict=True))


class ScratchMLPFunction(torch.autograd.Function):
    """An MLP whose backward IS the seed's algorithm: autograd hands in g_k = dL/dz_k.

    ``ScratchMLPFunction.apply(x, activations, W_1, b_1, ..., W_{k-1}, b_{k-1})``
    with ``activations`` a tuple of k-1 names; returns z_k (B, n_k).
    """

    @staticmethod
    def forward(ctx, x: Tensor, activations: tuple[str, ...], *params: Tensor) -> Tensor:  # noqa: ANN001
        weights = params[0::2]
        zs, dzs = forward(x, list(zip(weights, params[1::2], activations, strict=True)))
        ctx.depth = len(weights)
        ctx.save_for_backward(*zs[:-1], *dzs, *weights)  # z_1..z_{k-1}, z'_2..z'_k, W_1..W_{k-1}
        return zs[-1]

    @staticmethod
    def backward(ctx, g_k: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        n, saved = ctx.depth, ctx.saved_tensors
        zs, dzs, weights = saved[:n], saved[n:2 * n], saved[2 * n:]
        g_1, grad_w, grad_b = backward(g_k, zs, dzs, weights)
        grads = [g for pair in zip(grad_w, grad_b, strict=True) for g in pair]
        return (g_1 if ctx.needs_input_grad[0] else None), None, *grads


def scratch_mlp(x: Tensor, layers: Sequence[Layer]) -> Tensor:
    """Run ``layers`` through ScratchMLPFunction: differentiable, with the seed's backward."""
    params = [t for W, b, _ in layers for t in (W, b)]
    return ScratchMLPFunction.apply(x, tuple(f for _, _, f in layers), *params)
