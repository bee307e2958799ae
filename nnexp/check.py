"""`nnexp check`: every from-scratch part in nnexp/scratch/ against torch, value by value, in float64.

Each check builds random float64 inputs from a fixed seed (its own, so checks
do not depend on each other's order), runs the scratch code and an independent
torch reference, and reports the largest absolute difference over every output
and gradient it compares. Exit code 0 only when every row passes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

USAGE = """\
usage: nnexp check [-h]

Compare the from-scratch references in nnexp/scratch/ (the course seed's backpropagation,
LSTM cell, attention, SGD/Adam, perceptron rule) with torch on random float64 inputs
(fixed seed) and print one row per comparison: max abs error, tolerance, PASS/FAIL.
Exit code 0 if every row passes, 1 otherwise.
"""

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


def _err(ours: Sequence, ref: Sequence) -> float:
    """Max abs difference over pairs of tensors; a missing value or a shape mismatch is inf."""
    worst = 0.0
    for a, b in zip(ours, ref, strict=True):
        if a is None or b is None or a.shape != b.shape:
            return math.inf
        if a.numel():
            worst = max(worst, (a - b).abs().max().item())
    return worst


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
                        _err(ours, [L_ref.detach(), *ref]), TOL_GRAD))
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
    return [Row("ScratchMLPFunction", "autograd through F.linear", _err(ours, ref), TOL_GRAD)]


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
    return [Row("SGD per sample (seed)", "torch.optim.SGD, batch 1", _err(flat, params), TOL_GRAD)]


# --------------------------------------------------------------------------- LSTM


def check_lstm_standard() -> list[Row]:
    import torch
    from torch import nn

    from nnexp.scratch import lstm as sl

    B, T, F_in, H, layers = 3, 6, 4, 5, 2
    ref = nn.LSTM(F_in, H, num_layers=layers, bidirectional=True, batch_first=True).double()
    ours = sl.ScratchLSTM.from_torch(ref)
    x = torch.randn(B, T, F_in, dtype=torch.float64)
    h0 = torch.randn(layers * 2, B, H, dtype=torch.float64)
    c0 = torch.randn(layers * 2, B, H, dtype=torch.float64)
    r_out, r_h, r_c = torch.randn(B, T, 2 * H, dtype=torch.float64), torch.randn_like(h0), torch.randn_like(c0)

    def run(model, names: list[str]) -> tuple[list, list]:  # noqa: ANN001
        inputs = [t.clone().requires_grad_() for t in (x, h0, c0)]
        out, (h, c) = model(inputs[0], (inputs[1], inputs[2]))
        loss = (out * r_out).sum() + (h * r_h).sum() + (c * r_c).sum()
        params = [getattr(model, n) for n in names]
        return [out.detach(), h.detach(), c.detach()], list(torch.autograd.grad(loss, inputs + params))

    ours_names, ref_names = [], []
    for layer in range(layers):
        for d in range(2):
            sfx = sl.ScratchLSTM._suffix(layer, d)
            ours_names += [f"weight_x{sfx}", f"weight_h{sfx}", f"bias{sfx}"]
            ref_names += [f"weight_ih{sfx}", f"weight_hh{sfx}", f"bias_ih{sfx}"]  # d/d b_ih = d/d (b_ih + b_hh)
    ours_fwd, ours_grads = run(ours, ours_names)
    ref_fwd, ref_grads = run(ref, ref_names)
    what = "nn.LSTM, 2 layers, bidir."
    return [Row("LSTM standard: outputs", what, _err(ours_fwd, ref_fwd), TOL_GRAD),
            Row("LSTM standard: grads", what, _err(ours_grads, ref_grads), TOL_GRAD)]


def _seed_equations(x, h0, c0, weights: list):  # noqa: ANN001, ANN202
    """The seed's six equations written out, one sample and one step at a time (matrix @ vector)."""
    import torch

    sigm, tanh = torch.sigmoid, torch.tanh
    outputs = []
    for n in range(x.shape[0]):
        seq = list(x[n])  # T vectors (F,)
        for layer, (W_x, W_h, b) in enumerate(weights):
            W_xi, W_xj, W_xf, W_xo = W_x.chunk(4)
            W_hi, W_hj, W_hf, W_ho = W_h.chunk(4)
            b_i, b_j, b_f, b_o = b.chunk(4)
            h, c = h0[layer, n], c0[layer, n]
            hs = []
            for x_t in seq:
                i = tanh(W_xi @ x_t + W_hi @ h + b_i)
                j = sigm(W_xj @ x_t + W_hj @ h + b_j)
                f = sigm(W_xf @ x_t + W_hf @ h + b_f)
                o = tanh(W_xo @ x_t + W_ho @ h + b_o)
                c = c * f + i * j
                h = tanh(c) * o
                hs.append(h)
            seq = hs
        outputs.append(torch.stack(seq))  # (T, H): the last layer's h_t
    return torch.stack(outputs)  # (B, T, H)


def check_lstm_seed() -> list[Row]:
    import torch

    from nnexp.scratch import lstm as sl

    B, T, F_in, H, layers = 3, 5, 4, 6, 2
    model = sl.ScratchLSTM(F_in, H, num_layers=layers, form="seed").double()
    x = torch.randn(B, T, F_in, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(layers, B, H, dtype=torch.float64)
    c0 = torch.randn(layers, B, H, dtype=torch.float64)
    upstream = torch.randn(B, T, H, dtype=torch.float64)
    params = list(model.parameters())
    out, _ = model(x, (h0, c0))
    ours = [out.detach(), *torch.autograd.grad((out * upstream).sum(), [x, *params])]
    ref_out = _seed_equations(x, h0, c0, [model.weights(layer, 0) for layer in range(layers)])
    ref = [ref_out.detach(), *torch.autograd.grad((ref_out * upstream).sum(), [x, *params])]
    return [Row("LSTM seed form", "seed equations, autograd",
                _err(ours, ref), TOL_GRAD)]


# --------------------------------------------------------------------------- attention


def check_attention() -> list[Row]:
    import torch
    import torch.nn.functional as F

    from nnexp.scratch import attention as sa

    B, heads, Tq, Tk, d_k, d_v = 2, 3, 5, 7, 4, 6
    q = torch.randn(B, heads, Tq, d_k, dtype=torch.float64)
    k = torch.randn(B, heads, Tk, d_k, dtype=torch.float64)
    v = torch.randn(B, heads, Tk, d_v, dtype=torch.float64)
    allowed = torch.rand(Tq, Tk) > 0.4
    allowed[:, 0] = True  # every query sees at least one key
    cases = [("no mask", Tk, {}), ("bool mask", Tk, {"mask": allowed}),
             ("float mask", Tk, {"mask": torch.randn(Tq, Tk, dtype=torch.float64)}),
             ("causal", Tq, {"causal": True})]
    rows = []
    for label, tk, kw in cases:
        inputs = [t[..., :tk, :].clone().requires_grad_() if i else t.clone().requires_grad_()
                  for i, t in enumerate((q, k, v))]
        torch_kw = {"attn_mask": kw["mask"]} if "mask" in kw else {"is_causal": kw.get("causal", False)}
        out, weights = sa.scaled_dot_product_attention(*inputs, **kw)
        ref = F.scaled_dot_product_attention(*inputs, **torch_kw)
        # torch returns no weights: attending to the identity matrix as values gives them
        eye = torch.eye(tk, dtype=torch.float64).expand(B, heads, tk, tk)
        ref_weights = F.scaled_dot_product_attention(inputs[0], inputs[1], eye, **torch_kw)
        upstream = torch.randn_like(out)
        ours = [out.detach(), weights.detach(), *torch.autograd.grad((out * upstream).sum(), inputs)]
        theirs = [ref.detach(), ref_weights.detach(), *torch.autograd.grad((ref * upstream).sum(), inputs)]
        rows.append(Row(f"attention: {label}", "F.scaled_dot_product_attention",
                        _err(ours, theirs), TOL_GRAD))
    return rows


def check_multi_head_attention() -> list[Row]:
    import torch
    from torch import nn

    from nnexp.scratch import attention as sa

    B, T, S, d, h = 2, 5, 6, 8, 2
    ref = nn.MultiheadAttention(d, h, batch_first=True).double().eval()
    with torch.no_grad():  # torch starts the biases at 0: random ones test the bias mapping too
        ref.in_proj_bias.normal_()
        ref.out_proj.bias.normal_()
    ours = sa.MultiHeadAttention.from_torch(ref).eval()
    x = torch.randn(B, T, d, dtype=torch.float64)
    mem = torch.randn(B, S, d, dtype=torch.float64)
    allowed = torch.rand(T, T) > 0.4
    allowed[:, 0] = True
    allowed_bs = torch.rand(B, T, S) > 0.4
    allowed_bs[..., -1] = True
    causal_block = torch.ones(T, T, dtype=torch.bool).triu(1)  # torch: True = may NOT attend
    cases = [  # label, key/value input, our keyword arguments, torch's
        ("self, no mask", None, {}, {}),
        ("self, causal", None, {"causal": True}, {"attn_mask": causal_block}),
        ("self, bool mask", None, {"mask": allowed}, {"attn_mask": ~allowed}),
        ("cross, batch mask", mem, {"mask": allowed_bs}, {"attn_mask": (~allowed_bs).repeat_interleave(h, 0)}),
    ]
    rows = []
    for label, kv, ours_kw, ref_kw in cases:
        xq = x.clone().requires_grad_()
        xkv = xq if kv is None else kv.clone().requires_grad_()
        inputs = [xq] if kv is None else [xq, xkv]
        out, w = ours(xq, None if kv is None else xkv, None, **ours_kw)
        r_out, r_w = ref(xq, xkv, xkv, need_weights=True, average_attn_weights=False, **ref_kw)
        upstream = torch.randn_like(out)
        ours_params = [torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]),
                       torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]), ours.w_o.weight, ours.w_o.bias]
        leaves = [ours.w_q.weight, ours.w_k.weight, ours.w_v.weight, ours.w_q.bias, ours.w_k.bias, ours.w_v.bias,
                  ours.w_o.weight, ours.w_o.bias]
        g = torch.autograd.grad((out * upstream).sum(), inputs + leaves)
        g_in, g_p = list(g[:len(inputs)]), g[len(inputs):]
        ours_grads = g_in + [torch.cat(g_p[0:3]), torch.cat(g_p[3:6]), g_p[6], g_p[7]]
        ref_params = [ref.in_proj_weight, ref.in_proj_bias, ref.out_proj.weight, ref.out_proj.bias]
        ref_grads = list(torch.autograd.grad((r_out * upstream).sum(), inputs + ref_params))
        err = _err([out.detach(), w.detach(), *[p.detach() for p in ours_params], *ours_grads],
                   [r_out.detach(), r_w.detach(), *[p.detach() for p in ref_params], *ref_grads])
        rows.append(Row(f"multi-head: {label}", "nn.MultiheadAttention", err, TOL_GRAD))
    return rows


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
        rows.append(Row(label, f"torch.optim.{ref_cls.__name__}, 100 steps", _err(ours, ref), TOL_OPTIM))
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
        err_classic = max(err_classic, _err([new_w, new_b], [ref_w, ref_b]))
        # one SGD step on Rosenblatt's criterion -(y - y_hat)(w.x + b), y_hat held fixed
        p_w, p_b = w.clone().requires_grad_(), b.clone().requires_grad_()
        opt = torch.optim.SGD([p_w, p_b], lr=lr)
        score = p_w @ x + p_b
        (-(y - (score > 0).double().detach()) * score).backward()
        opt.step()
        err_sgd = max(err_sgd, _err([new_w, new_b], [p_w.detach(), p_b.detach()]))
    return [Row("perceptron step", "classic rule, case by case", err_classic, 0.0),
            Row("perceptron step", "SGD on Rosenblatt's criterion", err_sgd, TOL_OPTIM)]


CHECKS: list[tuple[str, Callable[[], list[Row]]]] = [
    ("backprop", check_backprop),
    ("ScratchMLPFunction", check_scratch_mlp_function),
    ("SGD per sample (seed)", check_sgd_per_sample),
    ("LSTM standard form", check_lstm_standard),
    ("LSTM seed form", check_lstm_seed),
    ("attention", check_attention),
    ("multi-head attention", check_multi_head_attention),
    ("optimizers", check_optimizers),
    ("perceptron", check_perceptron),
]


def run_checks(seed: int = 0) -> list[Row]:
    """Every check, each from ``seed`` in a forked RNG (the caller's random state is left alone)."""
    import torch

    rows: list[Row] = []
    for name, check in CHECKS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                rows.extend(check())
            except Exception as exc:  # a broken or missing component is a failed row, not a crash
                rows.append(Row(name, "-", math.inf, 0.0, note=f"{type(exc).__name__}: {exc}"))
    return rows


def main(args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(USAGE)
        return 0
    if args:
        sys.stderr.write(f"nnexp check: error: unexpected arguments: {' '.join(args)}\n{USAGE}")
        return 2
    from rich.console import Console
    from rich.table import Table

    rows = run_checks()
    table = Table(title="nnexp check: nnexp/scratch vs torch (float64, seed 0)", title_justify="left",
                  caption="error: max over every output and gradient compared", caption_justify="left")
    for col, justify in (("component", "left"), ("reference", "left"), ("max abs error", "right"),
                         ("tolerance", "right"), ("result", "left")):
        table.add_column(col, justify=justify)
    for r in rows:
        result = "[green]PASS[/green]" if r.passed else "[bold red]FAIL[/bold red]"
        error = f"{r.error:.1e}" if math.isfinite(r.error) else "-"
        table.add_row(r.component, r.reference, error, f"{r.tolerance:.0e}", result)
    console = Console(highlight=False)
    if not console.is_terminal:  # piped or captured: rich would assume 80 columns and wrap every row
        console = Console(highlight=False, width=110)
    console.print(table)
    failed = [r for r in rows if not r.passed]
    for r in failed:
        console.print(f"FAIL {r.component}: {r.note or f'error {r.error:.3e} > tolerance {r.tolerance:.0e}'}",
                      markup=False)
    console.print(f"{len(rows) - len(failed)} of {len(rows)} checks passed", markup=False)
    return 1 if failed else 0
