"""grad_norm/first_layer and grad_norm/last_layer: what the loop measures, and the vanishing gradient it shows."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from conftest import REPO, read_summary

from nnexp.data import Split
from nnexp.loop import FitSettings, end_weights, train_one_epoch
from nnexp.losses import make_objective
from nnexp.models.mlp import MLP


def _epoch(model: torch.nn.Module, split: Split, batch_size: int):
    objective = make_objective("auto", "classification", 3, None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: every step sees the same weights
    return train_one_epoch(model, split, objective, optimizer, FitSettings(epochs=1, batch_size=batch_size),
                           torch.Generator().manual_seed(0), lambda: False)


def test_the_first_and_last_weights_are_the_input_and_output_layers():
    assert end_weights(MLP((4,), 3, hidden=[8, 8])) == ("net.fc1.weight", "net.out.weight")
    assert end_weights(torch.nn.Sequential()) is None


def test_grad_norms_are_the_mean_over_steps_of_each_steps_gradient_norm():
    torch.manual_seed(0)
    model = MLP((4,), 3, hidden=[8, 8])
    split = Split(torch.randn(12, 4), torch.randint(0, 3, (12,)))
    stats = _epoch(model, split, batch_size=12)  # one step: the norm of that step's gradient
    first, last = model.net.fc1.weight.grad.norm().item(), model.net.out.weight.grad.norm().item()
    assert stats.grad_norm_first == pytest.approx(first, rel=1e-5)
    assert stats.grad_norm_last == pytest.approx(last, rel=1e-5)

    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    expected = []
    for idx in (order[:6], order[6:]):  # two steps of 6, in the loop's order, same weights (lr 0)
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(split.x[idx]), split.y[idx]).backward()
        expected.append(model.net.fc1.weight.grad.norm().item())
    assert _epoch(model, split, batch_size=6).grad_norm_first == pytest.approx(sum(expected) / 2, rel=1e-5)


def test_a_deep_sigmoid_net_passes_almost_no_gradient_to_its_first_layer():
    torch.manual_seed(0)
    split = Split(torch.randn(64, 16), torch.randint(0, 3, (64,)))
    norms = {}
    for activation, residual in (("sigmoid", False), ("sigmoid", True), ("relu", False)):
        torch.manual_seed(1)
        model = MLP((16,), 3, hidden=[16] * 10, activation=activation, residual=residual, init="xavier")
        stats = _epoch(model, split, batch_size=64)
        norms[activation, residual] = stats.grad_norm_first / stats.grad_norm_last
    assert norms["sigmoid", False] < 1e-4 * norms["sigmoid", True]
    assert norms["sigmoid", False] < 1e-4 * norms["relu", False]


@pytest.mark.parametrize("clip", [None, 0.01])
def test_grad_clip_limits_the_length_of_each_step(clip):
    """trainer.grad_clip: with SGD at lr 1, one step moves the weights by the clipped gradient's norm."""
    torch.manual_seed(0)
    model = MLP((4,), 3, hidden=[8])
    split = Split(torch.randn(12, 4), torch.randint(0, 3, (12,)))
    before = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    objective = make_objective("auto", "classification", 3, None)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    train_one_epoch(model, split, objective, optimizer, FitSettings(epochs=1, batch_size=12, grad_clip=clip),
                    torch.Generator().manual_seed(0), lambda: False)  # one step: the whole split is one batch
    step = (torch.nn.utils.parameters_to_vector(model.parameters()) - before).norm().item()
    if clip is None:
        assert step > 0.1  # the unclipped gradient is long ...
    else:
        assert step == pytest.approx(clip, rel=1e-3)  # ... so clipping cuts it down to exactly the limit


@pytest.mark.parametrize(("init", "std"), [("he", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
                                           ("xavier", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out)))])
def test_init_draws_weights_with_the_named_variance(init, std):
    torch.manual_seed(0)
    model = MLP((400,), 300, hidden=[200], init=init)
    for layer, fan_in, fan_out in ((model.net.fc1, 400, 200), (model.net.out, 200, 300)):
        assert layer.weight.std().item() == pytest.approx(std(fan_in, fan_out), rel=0.03)
        assert layer.weight.mean().abs().item() < 0.01 and torch.all(layer.bias == 0)


def test_torch_init_is_pytorchs_default():
    torch.manual_seed(0)
    a = MLP((5,), 2, hidden=[7])
    torch.manual_seed(0)
    b = torch.nn.Linear(5, 7)
    torch.testing.assert_close(a.net.fc1.weight, b.weight)


def test_a_run_logs_grad_norms_every_epoch_and_its_speed(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "dataset=moons", "model.hidden=[8,8]", "trainer.epochs=4", "trainer.progress=none",
                           f"hydra.run.dir={run_dir}")
    assert code == 0, err
    s = read_summary(run_dir)
    assert s["grad_norm_layers"] == {"first_layer": "net.fc1.weight", "last_layer": "net.out.weight"}
    for which in ("final", "best"):
        assert s[which]["grad_norm/first_layer"] > 0 and s[which]["grad_norm/last_layer"] > 0
    assert 0 < s["seconds_per_epoch"] < s["wall_seconds"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    for tag in ("grad_norm/first_layer", "grad_norm/last_layer"):
        assert [e.step for e in acc.Scalars(tag)] == [1, 2, 3, 4]


def test_loop_costs_benchmark_quick_mode_runs(tmp_path):
    """The benchmark script must keep working; its timings are not asserted, its metrics are."""
    results = (REPO / "benchmarks" / "RESULTS_loop.md").read_text()
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "loop_costs.py"), "--quick"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| grad-norm", "| flush"))]
    # neither measurement changes what is learned
    assert len(rows) == 2 and all(row.rstrip(" |").endswith("identical") for row in rows)
    assert (REPO / "benchmarks" / "RESULTS_loop.md").read_text() == results  # --quick writes nothing
