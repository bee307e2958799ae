"""`nnexp check`'s sequence comparisons: the LSTM (standard and seed form), the plain RNN, attention and
multi-head attention, each against torch in float64."""

from __future__ import annotations

from nnexp.check_row import TOL_GRAD, Row, max_abs_error

# --------------------------------------------------------------------------- LSTM


def _against_torch(ours, ref, states: int, label: str, what: str) -> list[Row]:  # noqa: ANN001
    """Outputs, final states and the gradients of inputs, initial states and every weight, ours vs torch's
    (a bidirectional recurrence of 2 layers in float64; d/d b_ih = d/d (b_ih + b_hh))."""
    import torch

    B, T = 3, 6
    x = torch.randn(B, T, ref.input_size, dtype=torch.float64)
    initial = [torch.randn(ref.num_layers * 2, B, ref.hidden_size, dtype=torch.float64) for _ in range(states)]
    r_out = torch.randn(B, T, 2 * ref.hidden_size, dtype=torch.float64)
    r_states = [torch.randn_like(s) for s in initial]

    def run(model, names: list[str]) -> tuple[list, list]:  # noqa: ANN001
        inputs = [t.clone().requires_grad_() for t in (x, *initial)]
        out, final = model(inputs[0], tuple(inputs[1:]) if states > 1 else inputs[1])
        final = list(final) if states > 1 else [final]
        loss = (out * r_out).sum() + sum((f * r).sum() for f, r in zip(final, r_states, strict=True))
        params = [getattr(model, n) for n in names]
        return [out.detach(), *(f.detach() for f in final)], list(torch.autograd.grad(loss, inputs + params))

    ours_names, ref_names = [], []
    for layer in range(ref.num_layers):
        for d in range(2):
            sfx = ours._suffix(layer, d)
            ours_names += [f"weight_x{sfx}", f"weight_h{sfx}", f"bias{sfx}"]
            ref_names += [f"weight_ih{sfx}", f"weight_hh{sfx}", f"bias_ih{sfx}"]
    ours_fwd, ours_grads = run(ours, ours_names)
    ref_fwd, ref_grads = run(ref, ref_names)
    return [Row(f"{label}: outputs", what, max_abs_error(ours_fwd, ref_fwd), TOL_GRAD),
            Row(f"{label}: grads", what, max_abs_error(ours_grads, ref_grads), TOL_GRAD)]


def check_lstm_standard() -> list[Row]:
    from torch import nn

    from nnexp.scratch import lstm as sl

    ref = nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True).double()
    return _against_torch(sl.ScratchLSTM.from_torch(ref), ref, 2, "LSTM standard", "nn.LSTM, 2 layers, bidir.")


def check_rnn() -> list[Row]:
    from torch import nn

    from nnexp.scratch import rnn as sr

    ref = nn.RNN(4, 5, num_layers=2, bidirectional=True, batch_first=True).double()
    return _against_torch(sr.ScratchRNN.from_torch(ref), ref, 1, "RNN (Elman)", "nn.RNN, 2 layers, bidir.")


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
                max_abs_error(ours, ref), TOL_GRAD)]


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
                        max_abs_error(ours, theirs), TOL_GRAD))
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
        err = max_abs_error([out.detach(), w.detach(), *[p.detach() for p in ours_params], *ours_grads],
                            [r_out.detach(), r_w.detach(), *[p.detach() for p in ref_params], *ref_grads])
        rows.append(Row(f"multi-head: {label}", "nn.MultiheadAttention", err, TOL_GRAD))
    return rows
