"""`nnexp check`'s feed-forward comparisons: backprop, ScratchMLPFunction, the seed's per-sample SGD,
SGD/Adam and the perceptron rule, each against torch in float64."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from nnexp.check_row import TOL_GRAD, TOL_OPTIM, Row, max_abs_error

# --------------------------------------------------------------------------- backprop


def _random_mlp(sizes: Sequence[int], acts: Sequence[str]) -> list:
    import torch

    return [(torch.randn(n_out, n_in, dtype=torch.float64) / math.sqrt(n_in),
             0.1 * torch.randn(n_out, dtype=torch.float64), f)
            for n_in, n_out, f in zip(sizes[:-1], sizes[1:], acts, strict=True)]


def _torch_mlp(x, params: Sequence, acts: Sequence[str]):  # noqa: ANN001, ANN202
    import torch
    import torch.nn.functional as F

    fns = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "identity": lambda a: a}
    z = x
    for (W, b), f in zip(zip(params[0::2], params[1::2], strict=True), acts, strict=True):
        z = fns[f](F.linear(z, W, b))
    return z


def check_backprop() -> list[Row]:
    import torch
    import torch.nn.functional as F

    from nnexp.scratch import backprop as bp

    acts = ["tanh", "sigmoid", "relu", "identity"]
    x = torch.randn(6, 5, dtype=torch.float64)  # (B, d)
    cases = [
        ("mse", 3, torch.randn(6, 3, dtype=torch.float64), F.mse_loss, "F.mse_loss"),
        ("bce", 1, torch.randint(0, 2, (6, 1)).double(), F.binary_cross_entropy_with_logits, "BCE with logits"),
        ("cross_entropy", 4, torch.randint(0, 4, (6,)), F.cross_entropy, "F.cross_entropy"),
    ]
    rows = []
    for loss, n_out, y, torch_loss, label in cases:
        layers = _random_mlp([5, 8, 7, 6, n_out], acts)
        L, grads = bp.backprop(x, y, layers, loss)
        params = [t.clone().requires_grad_() for W, b, _ in layers for t in (W, b)]
        L_ref = torch_loss(_torch_mlp(x, params, acts), y)
        ref = torch.autograd.grad(L_ref, params)
        ours = [L] + [g for pair in grads for g in pair]
        rows.append(Row(f"backprop: {loss}", f"autograd, {label}",
                        max_abs_error(ours, [L_ref.detach(), *ref]), TOL_GRAD))
    return rows


def check_scratch_mlp_function() -> list[Row]:
    import torch

    from nnexp.scratch import backprop as bp

    acts = ["relu", "tanh", "identity"]
    layers = _random_mlp([4, 9, 6, 3], acts)
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    params = [t.clone().requires_grad_() for W, b, _ in layers for t in (W, b)]
    upstream = torch.randn(7, 3, dtype=torch.float64)  # a random dL/dz_k
    out = bp.scratch_mlp(x, list(zip(params[0::2], params[1::2], acts, strict=True)))
    ours = [out.detach(), *torch.autograd.grad((out * upstream).sum(), [x, *params])]
    ref_out = _torch_mlp(x, params, acts)
    ref = [ref_out.detach(), *torch.autograd.grad((ref_out * upstream).sum(), [x, *params])]
    return [Row("ScratchMLPFunction", "autograd through F.linear", max_abs_error(ours, ref), TOL_GRAD)]


def check_sgd_per_sample() -> list[Row]:
    import torch
    import torch.nn.functional as F

    from nnexp.scratch import optim as so

    acts = ["tanh", "identity"]
    layers = _random_mlp([3, 5, 2], acts)
    xs, ys = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 2, dtype=torch.float64)
    ours = so.sgd_per_sample(layers, xs, ys, "mse", lr=0.05, epochs=2)
    params = [t.clone().requires_grad_() for W, b, _ in layers for t in (W, b)]
    opt = torch.optim.SGD(params, lr=0.05)
    for _ in range(2):
        for i in range(len(xs)):  # one sample per step, in order
            opt.zero_grad()
            F.mse_loss(_torch_mlp(xs[i:i + 1], params, acts), ys[i:i + 1]).backward()
            opt.step()
    flat = [t for W, b, _ in ours for t in (W, b)]
    return [Row("SGD per sample (seed)", "torch.optim.SGD, batch 1", max_abs_error(flat, params), TOL_GRAD)]

# --------------------------------------------------------------------------- optimizers


def _run_optimizer(make: Callable, params: list, steps: int = 100) -> list:
    """``steps`` updates on a fixed smooth objective; param groups: weights decayed, the bias not."""
    import torch

    X = torch.linspace(-1, 1, 24, dtype=torch.float64).reshape(8, 3)
    Y = torch.sin(torch.arange(16, dtype=torch.float64)).reshape(8, 2)
    W, b = params
    opt = make([{"params": [W]}, {"params": [b], "weight_decay": 0.0}])
    for _ in range(steps):
        opt.zero_grad()
        ((torch.tanh(X @ W.T + b) - Y) ** 2).mean().backward()
        opt.step()
    return [W.detach(), b.detach()]


def check_optimizers() -> list[Row]:
    import torch

    from nnexp.scratch import optim as so

    W0, b0 = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, dtype=torch.float64)
    cases = [
        ("SGD", so.SGD, torch.optim.SGD, {"lr": 0.1}),
        ("SGD + weight decay", so.SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.01}),
        ("SGD momentum", so.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
        ("SGD momentum, dampening", so.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
        ("SGD Nesterov", so.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        ("Adam", so.Adam, torch.optim.Adam, {"lr": 0.01}),
        ("Adam wd, betas, eps", so.Adam, torch.optim.Adam,
         {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}),
    ]
    rows = []
    for label, ours_cls, ref_cls, kw in cases:
        ours = _run_optimizer(lambda groups, c=ours_cls, kw=kw: c(groups, **kw),
                              [W0.clone().requires_grad_(), b0.clone().requires_grad_()])
        ref = _run_optimizer(lambda groups, c=ref_cls, kw=kw: c(groups, **kw),
                             [W0.clone().requires_grad_(), b0.clone().requires_grad_()])
        rows.append(Row(label, f"torch.optim.{ref_cls.__name__}, 100 steps", max_abs_error(ours, ref), TOL_OPTIM))
    return rows


# --------------------------------------------------------------------------- perceptron


def check_perceptron() -> list[Row]:
    import torch

    from nnexp.scratch import perceptron as sp

    d, lr = 4, 0.5
    err_classic = err_sgd = 0.0
    for trial in range(12):
        w, x = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
        b = torch.randn((), dtype=torch.float64)
        y = float(trial % 2)
        new_w, new_b = sp.perceptron_step(w, b, x, y, lr)
        # the classic rule, case by case
        s = (w @ x + b).item()
        if y == 1 and s <= 0:  # a missed positive: move towards x
            ref_w, ref_b = w + lr * x, b + lr
        elif y == 0 and s > 0:  # a false positive: move away from x
            ref_w, ref_b = w - lr * x, b - lr
        else:
            ref_w, ref_b = w, b
        err_classic = max(err_classic, max_abs_error([new_w, new_b], [ref_w, ref_b]))
        # one SGD step on Rosenblatt's criterion -(y - y_hat)(w.x + b), y_hat held fixed
        p_w, p_b = w.clone().requires_grad_(), b.clone().requires_grad_()
        opt = torch.optim.SGD([p_w, p_b], lr=lr)
        score = p_w @ x + p_b
        (-(y - (score > 0).double().detach()) * score).backward()
        opt.step()
        err_sgd = max(err_sgd, max_abs_error([new_w, new_b], [p_w.detach(), p_b.detach()]))
    return [Row("perceptron step", "classic rule, case by case", err_classic, 0.0),
            Row("perceptron step", "SGD on Rosenblatt's criterion", err_sgd, TOL_OPTIM)]
