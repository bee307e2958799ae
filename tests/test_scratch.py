"""nnexp/scratch against torch, value by value in float64 (micrograd style), and through `nnexp train`."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from conftest import SHRINK, read_summary
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from nnexp import optim as factories
from nnexp.models.mlp import MLP
from nnexp.scratch import backprop as bp
from nnexp.scratch import optim as so
from nnexp.scratch.lstm import ScratchLSTM, load_torch_lstm, lstm_cell
from nnexp.scratch.perceptron import perceptron_step, perceptron_train, predict

D = torch.float64
TOL = 1e-10
TORCH_ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "identity": lambda a: a}


def close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> bool:
    return a.shape == b.shape and (a - b).abs().max().item() <= tol


def random_layers(sizes: list[int], acts: list[str]) -> list[bp.Layer]:
    return [(torch.randn(o, i, dtype=D) / math.sqrt(i), torch.randn(o, dtype=D) * 0.1, f)
            for i, o, f in zip(sizes[:-1], sizes[1:], acts, strict=True)]


def torch_forward(x: torch.Tensor, params: list[torch.Tensor], acts: list[str]) -> torch.Tensor:
    for W, b, f in zip(params[0::2], params[1::2], acts, strict=True):
        x = TORCH_ACT[f](F.linear(x, W, b))
    return x


# --------------------------------------------------------------------------- backprop


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "identity"])
def test_activation_and_its_derivative_match_autograd(name):
    torch.manual_seed(0)
    a = torch.randn(50, dtype=D, requires_grad=True)
    z, dz = bp.ACTIVATIONS[name](a.detach())
    ref = TORCH_ACT[name](a)
    (ref_dz,) = torch.autograd.grad(ref.sum(), a)
    assert close(z, ref.detach()) and close(dz, ref_dz)


@pytest.mark.parametrize(("loss", "n_out", "target", "torch_loss"), [
    ("mse", 3, lambda: torch.randn(5, 3, dtype=D), F.mse_loss),
    ("bce", 1, lambda: torch.randint(0, 2, (5, 1)).to(D), F.binary_cross_entropy_with_logits),
    ("cross_entropy", 4, lambda: torch.randint(0, 4, (5,)), F.cross_entropy),
])
def test_loss_value_and_dl_dz_match_autograd(loss, n_out, target, torch_loss):
    torch.manual_seed(0)
    z = (3 * torch.randn(5, n_out, dtype=D)).requires_grad_()
    y = target()
    L, g = bp.LOSSES[loss](z.detach(), y)
    ref = torch_loss(z, y)
    (ref_g,) = torch.autograd.grad(ref, z)
    assert close(L, ref.detach()) and close(g, ref_g)


@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
@pytest.mark.parametrize("acts", [["sigmoid", "identity"], ["tanh", "relu", "identity"], ["relu", "sigmoid", "tanh"]])
def test_backprop_gradients_equal_autograd(acts, loss):
    torch.manual_seed(1)
    n_out = {"mse": 2, "bce": 1, "cross_entropy": 3}[loss]
    layers = random_layers([4, *[6] * (len(acts) - 1), n_out], acts)
    x = torch.randn(8, 4, dtype=D)
    y = {"mse": torch.randn(8, 2, dtype=D), "bce": torch.randint(0, 2, (8, 1)).to(D),
         "cross_entropy": torch.randint(0, 3, (8,))}[loss]
    L, grads = bp.backprop(x, y, layers, loss)
    params = [t.clone().requires_grad_() for W, b, _ in layers for t in (W, b)]
    torch_loss = {"mse": F.mse_loss, "bce": F.binary_cross_entropy_with_logits, "cross_entropy": F.cross_entropy}
    ref_L = torch_loss[loss](torch_forward(x, params, acts), y)
    ref = torch.autograd.grad(ref_L, params)
    assert close(L, ref_L.detach())
    for i, (gW, gb) in enumerate(grads):
        assert close(gW, ref[2 * i]), f"grad W_{i + 1}"
        assert close(gb, ref[2 * i + 1]), f"grad b_{i + 1}"


def test_backprop_of_one_sigmoid_unit_by_hand():
    # z = s(w.x + b), L = (z - y)^2: dL/dw = 2 (z - y) z (1 - z) x
    W, b = torch.tensor([[0.5, -1.0]], dtype=D), torch.tensor([0.25], dtype=D)
    x, y = torch.tensor([[2.0, 1.0]], dtype=D), 1.0
    z = 1 / (1 + math.exp(-(0.5 * 2 - 1.0 + 0.25)))
    L, [(gW, gb)] = bp.backprop(x, torch.tensor([[y]], dtype=D), [(W, b, "sigmoid")], "mse")
    delta = 2 * (z - y) * z * (1 - z)
    assert L.item() == pytest.approx((z - y) ** 2, abs=1e-15)
    assert gW[0].tolist() == pytest.approx([delta * 2.0, delta * 1.0], abs=1e-15)
    assert gb.tolist() == pytest.approx([delta], abs=1e-15)


def test_unknown_activation_or_loss_is_a_value_error():
    layers = random_layers([2, 1], ["softplus"])
    with pytest.raises(ValueError, match="softplus"):
        bp.forward(torch.randn(1, 2, dtype=D), layers)
    with pytest.raises(ValueError, match="hinge.*mse, bce, cross_entropy"):
        bp.backprop(torch.randn(1, 2, dtype=D), torch.zeros(1, 1, dtype=D), random_layers([2, 1], ["identity"]),
                    "hinge")


def test_scratch_mlp_function_passes_gradcheck():
    torch.manual_seed(0)
    layers = random_layers([3, 4, 2], ["tanh", "identity"])
    x = torch.randn(5, 3, dtype=D, requires_grad=True)
    params = [t.clone().requires_grad_() for W, b, _ in layers for t in (W, b)]
    assert torch.autograd.gradcheck(
        lambda x, *p: bp.ScratchMLPFunction.apply(x, ("tanh", "identity"), *p), (x, *params))


# --------------------------------------------------------------------------- the MLP with impl / residual


def _mlp_pair(**kw) -> tuple[MLP, MLP]:
    torch.manual_seed(0)
    ours = MLP((1, 3, 3), 4, impl="scratch", **kw).double()
    torch.manual_seed(0)  # the same seed gives the same weights: impl changes only how gradients are computed
    ref = MLP((1, 3, 3), 4, impl="torch", **kw).double()
    return ours, ref


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_scratch_mlp_equals_torch_mlp(activation):
    ours, ref = _mlp_pair(hidden=[7, 5], activation=activation)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values(), strict=True))
    x = torch.randn(6, 1, 3, 3, dtype=D)
    y = torch.randint(0, 4, (6,))
    out, ref_out = ours(x), ref(x)
    assert isinstance(out.grad_fn, bp.ScratchMLPFunction._backward_cls)  # the seed's backward, not autograd's
    assert close(out, ref_out)
    F.cross_entropy(out, y).backward()
    F.cross_entropy(ref_out, y).backward()
    for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
        assert close(p.grad, q.grad), name


def test_residual_skips_only_layers_of_equal_width():
    torch.manual_seed(0)
    model = MLP((4,), 2, hidden=[8, 8, 3], activation="tanh", residual=True).double()
    assert model.skips == [False, True, False]
    x = torch.randn(5, 4, dtype=D)
    n = model.net
    z1 = torch.tanh(n.fc1(x))
    z2 = z1 + torch.tanh(n.fc2(z1))  # z_{i+1} = z_i + f(W z_i + b)
    assert close(model(x), n.out(torch.tanh(n.fc3(z2))))
    plain = MLP((4,), 2, hidden=[8, 8, 3], activation="tanh").double()
    plain.load_state_dict(model.state_dict())  # residual adds no parameters
    assert not close(plain(x), model(x), 1e-6)


def test_residual_with_dropout_is_random_in_train_mode_only():
    model = MLP((4,), 2, hidden=[8, 8], residual=True, dropout=0.5)
    x = torch.randn(5, 4)
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize(("kw", "match"), [
    ({"impl": "scratch", "dropout": 0.2}, "impl=scratch.*dropout"),
    ({"impl": "scratch", "residual": True}, "impl=scratch.*residual"),
    ({"impl": "autograd"}, "'autograd'.*torch, scratch"),
])
def test_mlp_rejects_what_it_cannot_do(kw, match):
    with pytest.raises(ValueError, match=match):
        MLP((2,), 1, hidden=[4], **kw)


# --------------------------------------------------------------------------- LSTM


def _lstm_outputs_and_grads(model: nn.Module, names: list[str], x, state, upstream):  # noqa: ANN001
    x = x.clone().requires_grad_()
    out, (h, c) = model(x, state)
    loss = (out * upstream[0]).sum() + (h * upstream[1]).sum() + (c * upstream[2]).sum()
    grads = torch.autograd.grad(loss, [x, *[getattr(model, n) for n in names]])
    return [out, h, c], grads


@pytest.mark.parametrize(("layers", "bidirectional", "with_state"),
                         [(1, False, False), (1, True, True), (2, False, True), (3, True, False)])
def test_standard_lstm_equals_torch_lstm(layers, bidirectional, with_state):
    torch.manual_seed(0)
    B, T, F_in, H, dirs = 3, 5, 4, 6, 2 if bidirectional else 1
    ref = nn.LSTM(F_in, H, num_layers=layers, bidirectional=bidirectional, batch_first=True).double()
    ours = ScratchLSTM.from_torch(ref)
    x = torch.randn(B, T, F_in, dtype=D)
    state = None
    if with_state:
        state = (torch.randn(layers * dirs, B, H, dtype=D), torch.randn(layers * dirs, B, H, dtype=D))
    upstream = (torch.randn(B, T, H * dirs, dtype=D), torch.randn(layers * dirs, B, H, dtype=D),
                torch.randn(layers * dirs, B, H, dtype=D))
    sfx = [f"_l{k}" + s for k in range(layers) for s in ["", "_reverse"][:dirs]]
    ours_names = [f"{w}{s}" for s in sfx for w in ("weight_x", "weight_h", "bias")]
    ref_names = [f"{w}{s}" for s in sfx for w in ("weight_ih", "weight_hh", "bias_ih")]  # d/d b_ih = d/d (b_ih + b_hh)
    ours_v, ours_g = _lstm_outputs_and_grads(ours, ours_names, x, state, upstream)
    ref_v, ref_g = _lstm_outputs_and_grads(ref, ref_names, x, state, upstream)
    assert ours_v[0].shape == (B, T, H * dirs) and ours_v[1].shape == (layers * dirs, B, H)
    for a, b in zip(ours_v, ref_v, strict=True):
        assert close(a.detach(), b.detach())
    for a, b in zip(ours_g, ref_g, strict=True):  # x, then W_x, W_h, b per layer and direction
        assert close(a, b)


def test_seed_form_cell_is_the_seed_equations():
    torch.manual_seed(0)
    H, F_in = 3, 2
    w_x, w_h, b = torch.randn(4 * H, F_in, dtype=D), torch.randn(4 * H, H, dtype=D), torch.randn(4 * H, dtype=D)
    x, h, c = torch.randn(F_in, dtype=D), torch.randn(H, dtype=D), torch.randn(H, dtype=D)

    def gate(k: int) -> torch.Tensor:  # W_xk x + W_hk h + b_k, gate k of (i, j, f, o)
        rows = slice(k * H, (k + 1) * H)
        return w_x[rows] @ x + w_h[rows] @ h + b[rows]

    i, j, f, o = torch.tanh(gate(0)), torch.sigmoid(gate(1)), torch.sigmoid(gate(2)), torch.tanh(gate(3))
    c_t = c * f + i * j
    h_t = torch.tanh(c_t) * o
    ours_h, ours_c = lstm_cell(x[None], h[None], c[None], w_x, w_h, b, form="seed")
    assert close(ours_h[0], h_t) and close(ours_c[0], c_t)
    std_h, _ = lstm_cell(x[None], h[None], c[None], w_x, w_h, b, form="standard")
    assert not close(std_h[0], h_t, 1e-3)  # the two forms are different functions


def test_seed_form_lstm_runs_a_sequence_with_state():
    torch.manual_seed(0)
    model = ScratchLSTM(3, 4, num_layers=2, bidirectional=True, form="seed").double()
    x = torch.randn(2, 6, 3, dtype=D)
    out, (h, c) = model(x)
    assert out.shape == (2, 6, 8) and h.shape == c.shape == (4, 2, 4)
    assert close(out[:, -1, :4], h[2]) and close(out[:, 0, 4:], h[3])  # last layer: forward ends at T, reverse at 1
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_lstm_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    model = ScratchLSTM(3, 4, num_layers=2, dropout=0.5)
    x = torch.randn(2, 5, 3)
    assert not torch.equal(model(x)[0], model(x)[0])
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])


def test_lstm_bad_settings_are_value_errors():
    with pytest.raises(ValueError, match="form='peephole'.*standard, seed"):
        ScratchLSTM(2, 3, form="peephole")
    with pytest.raises(ValueError, match="standard"):
        load_torch_lstm(ScratchLSTM(2, 3, form="seed"), nn.LSTM(2, 3))
    with pytest.raises(ValueError, match="differ"):
        load_torch_lstm(ScratchLSTM(2, 3), nn.LSTM(2, 4))


# --------------------------------------------------------------------------- optimizers

OPTIM_CASES = [
    (so.SGD, torch.optim.SGD, {"lr": 0.1}),
    (so.SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.05}),
    (so.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (so.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (so.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "dampening": 0.5}),
    (so.Adam, torch.optim.Adam, {"lr": 0.01}),
    (so.Adam, torch.optim.Adam, {"lr": 0.03, "betas": (0.5, 0.9), "eps": 1e-4, "weight_decay": 0.1}),
]


def _train(make, W0: torch.Tensor, b0: torch.Tensor, steps: int = 100) -> list[torch.Tensor]:  # noqa: ANN001
    W, b = W0.clone().requires_grad_(), b0.clone().requires_grad_()
    opt = make([{"params": [W]}, {"params": [b], "weight_decay": 0.0}])  # as run.py builds them
    x = torch.randn(16, 3, dtype=D, generator=torch.Generator().manual_seed(1))  # (N, 3)
    y = torch.linspace(-1, 1, 32, dtype=D).view(16, 2)  # (N, 2)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(torch.tanh(x @ W.T + b), y).backward()
        opt.step()
    return [W.detach(), b.detach()]


@pytest.mark.parametrize(("ours", "ref", "kw"), OPTIM_CASES, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_optimizer_follows_torch_for_100_steps(ours, ref, kw):
    torch.manual_seed(0)
    W0, b0 = torch.randn(2, 3, dtype=D), torch.randn(2, dtype=D)
    mine = _train(lambda g: ours(g, **kw), W0, b0)
    theirs = _train(lambda g: ref(g, **kw), W0, b0)
    assert not close(mine[0], W0, 1e-3)  # it moved
    assert all(close(a, b, 1e-12) for a, b in zip(mine, theirs, strict=True))


def test_plain_sgd_step_is_the_seed_update():
    W = torch.tensor([1.0, -2.0], dtype=D, requires_grad=True)
    W.grad = torch.tensor([0.5, 0.25], dtype=D)
    so.SGD([W], lr=0.1).step()
    assert W.detach().tolist() == [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 0.25]


def test_scratch_optimizer_state_round_trips_and_works_with_a_scheduler():
    torch.manual_seed(0)
    W = nn.Parameter(torch.randn(3, dtype=D))
    opt = so.Adam([W], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(2):
        opt.zero_grad()
        (W ** 2).sum().backward()
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.025)
    clone = so.Adam([nn.Parameter(W.detach().clone())], lr=0.1)
    clone.load_state_dict(opt.state_dict())
    assert clone.state[clone.param_groups[0]["params"][0]]["step"] == 2


def test_sgd_per_sample_is_torch_sgd_with_batch_size_one():
    torch.manual_seed(0)
    acts = ["sigmoid", "identity"]
    layers = random_layers([2, 4, 1], acts)
    xs, ys = torch.randn(12, 2, dtype=D), torch.randint(0, 2, (12, 1)).to(D)
    before = [t.clone() for W, b, _ in layers for t in (W, b)]
    ours = so.sgd_per_sample(layers, xs, ys, "bce", lr=0.3, epochs=3)
    params = [t.clone().requires_grad_() for t in before]
    opt = torch.optim.SGD(params, lr=0.3)
    for _ in range(3):
        for i in range(12):
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(torch_forward(xs[i:i + 1], params, acts), ys[i:i + 1]).backward()
            opt.step()
    assert all(close(a, b) for a, b in zip([t for W, b, _ in ours for t in (W, b)], params, strict=True))
    after = [t for W, b, _ in layers for t in (W, b)]
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))  # the input layers are left alone


@pytest.mark.parametrize("impl", ["torch", "scratch"])
def test_factories_pick_the_implementation(impl):
    p = [nn.Parameter(torch.zeros(2))]
    opt_sgd = factories.sgd(p, lr=0.1, momentum=0.9, nesterov=True, impl=impl)
    opt_adam = factories.adam(p, lr=0.1, betas=[0.8, 0.9], impl=impl)
    expected = (so.SGD, so.Adam) if impl == "scratch" else (torch.optim.SGD, torch.optim.Adam)
    assert type(opt_sgd) is expected[0] and type(opt_adam) is expected[1]
    sgd_group, adam_group = opt_sgd.param_groups[0], opt_adam.param_groups[0]
    assert (sgd_group["lr"], sgd_group["momentum"], sgd_group["nesterov"]) == (0.1, 0.9, True)
    assert (adam_group["lr"], adam_group["betas"]) == (0.1, (0.8, 0.9))


def test_factories_reject_an_unknown_impl():
    for factory in (factories.sgd, factories.adam):
        with pytest.raises(ValueError, match="impl='numpy' is out of range; allowed: one of torch, scratch"):
            factory([nn.Parameter(torch.zeros(1))], lr=0.1, impl="numpy")
    with pytest.raises(ValueError, match="nesterov"):
        so.SGD([nn.Parameter(torch.zeros(1))], lr=0.1, nesterov=True)


# --------------------------------------------------------------------------- perceptron


@pytest.mark.parametrize(("y", "score_sign", "change"), [(1, -1, 1), (0, 1, -1), (1, 1, 0), (0, -1, 0)])
def test_perceptron_step_moves_only_on_mistakes(y, score_sign, change):
    x = torch.tensor([1.0, 2.0], dtype=D)
    w, b = torch.tensor([0.5, 0.5], dtype=D) * score_sign, torch.tensor(0.0, dtype=D)
    new_w, new_b = perceptron_step(w, b, x, y, lr=0.1)
    assert close(new_w, w + change * 0.1 * x, 0.0) and new_b.item() == pytest.approx(change * 0.1)


def test_perceptron_learns_and_but_not_xor():
    x = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=D)
    w, b, mistakes = perceptron_train(x, torch.tensor([0, 0, 0, 1], dtype=D), lr=1.0, epochs=50)
    assert mistakes[-1] == 0 and predict(w, b, x).tolist() == [0, 0, 0, 1]
    _, _, mistakes = perceptron_train(x, torch.tensor([0, 1, 1, 0], dtype=D), lr=1.0, epochs=50)
    assert len(mistakes) == 50 and min(mistakes) > 0  # not linearly separable: it never settles


# --------------------------------------------------------------------------- through `nnexp train`


@pytest.fixture
def scratch_calls(monkeypatch) -> Counter:  # noqa: ANN001
    """Counts what ran of nnexp/scratch: the seed's backward pass and each scratch optimizer's steps."""
    calls: Counter = Counter()

    def spy(name: str, real):  # noqa: ANN001, ANN202
        def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            calls[name] += 1
            return real(*args, **kwargs)
        return counted

    monkeypatch.setattr(bp, "backward", spy("backward", bp.backward))  # ScratchMLPFunction calls it
    for cls in (so.SGD, so.Adam):
        monkeypatch.setattr(cls, "step", spy(cls.__name__, cls.step))
    return calls


def _losses(run_dir) -> list[float]:  # noqa: ANN001
    """train/loss and val/loss of every epoch, from TensorBoard (metrics.csv rounds to 6 digits)."""
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return [e.value for tag in ("train/loss", "val/loss") for e in acc.Scalars(tag)]


def test_train_with_scratch_model_and_optimizer(run_cli, tmp_path, scratch_calls):
    code, _, err = run_cli("train", *SHRINK, "model.impl=scratch", "dataset=xor", "trainer.epochs=3",
                           "optimizer=sgd", "optimizer.impl=scratch", f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err
    # every optimizer step was the scratch SGD's, after a backward pass of the seed's algorithm
    assert scratch_calls["SGD"] > 0 and scratch_calls["backward"] == scratch_calls["SGD"]
    s = read_summary(tmp_path / "r")
    assert s["status"] == "completed" and s["epochs_run"] == 3
    assert s["final"]["train/loss"] < 0.69  # it learned something in 3 epochs


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_scratch_optimizer_gives_torch_losses(run_cli, tmp_path, optimizer, scratch_calls):
    runs, steps = {}, {}
    for impl in ("torch", "scratch"):
        code, _, err = run_cli("train", *SHRINK, "trainer.epochs=3", "dataset=xor", "model.hidden=[16]",
                               f"optimizer={optimizer}", f"optimizer.impl={impl}", "regularizer=l2",
                               f"hydra.run.dir={tmp_path / impl}")
        assert code == 0, err
        runs[impl] = _losses(tmp_path / impl)
        steps[impl] = scratch_calls["Adam" if optimizer == "adam" else "SGD"]
    assert steps["torch"] == 0 and steps["scratch"] > 0  # optimizer.impl picked the implementation
    assert runs["scratch"] == pytest.approx(runs["torch"], abs=1e-6)


def test_scratch_mlp_trains_like_the_torch_mlp_for_5_epochs(run_cli, tmp_path, scratch_calls):
    runs, backward_passes = {}, {}
    for impl in ("torch", "scratch"):
        code, _, err = run_cli("train", *SHRINK, "trainer.epochs=5", "dataset=xor", "model.hidden=[16,16]",
                               "model.activation=tanh", "regularizer=none", "trainer.seed=3",
                               f"model.impl={impl}", f"hydra.run.dir={tmp_path / impl}")
        assert code == 0, err
        runs[impl] = _losses(tmp_path / impl)
        backward_passes[impl] = scratch_calls["backward"]
    assert backward_passes["torch"] == 0 and backward_passes["scratch"] > 0  # model.impl picked the backward pass
    assert len(runs["scratch"]) == 2 * 5
    assert runs["scratch"] == pytest.approx(runs["torch"], abs=1e-6)


@pytest.mark.parametrize(("override", "message"), [
    ("model.impl=jax", r"model(\.|: )impl='jax'.*torch, scratch"),  # the range check or the constructor
    ("optimizer.impl=jax", r"optimizer(\.|: )impl='jax'.*torch, scratch"),
    ("regularizer=dropout", r"impl=scratch \(the seed's backpropagation\) cannot do dropout > 0"),
])
def test_bad_impl_is_a_usage_error(run_cli, override, message):
    extra = ["model.impl=scratch"] if override.startswith("regularizer") else []
    code, _, err = run_cli("train", *SHRINK, "dataset=xor", *extra, override)
    assert code == 2
    assert re.search(message, err), err
