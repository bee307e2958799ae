"""grad_norm/first_step and pictures/step_gradients: how much gradient reaches each time step of a recurrent
model (nnexp/step_gradients.py), measured without changing what the run learns."""

from __future__ import annotations

import csv

import pytest
import torch
from conftest import read_summary
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nnexp import step_gradients
from nnexp.data import sequences
from nnexp.losses import make_objective
from nnexp.models.lstm import LSTM
from nnexp.models.mlp import MLP
from nnexp.models.rnn import RNN


def _adding(length: int):
    return sequences.adding(n_samples=300, length=length, val_fraction=0.5, seed=0)


def objective_for(data):  # noqa: ANN001, ANN201 - mse, as `nnexp train dataset=adding` picks it
    return make_objective("auto", data.task, data.num_classes, data.target_dim, data.per_step)


def test_only_recurrent_models_measure_it():
    assert step_gradients.measures(RNN((10, 2), 1)) and step_gradients.measures(LSTM((10, 2), 1))
    assert not step_gradients.measures(MLP((2,), 1, hidden=[4]))


def test_a_plain_rnn_s_gradient_vanishes_with_the_distance_from_the_answer():
    torch.manual_seed(0)
    data = _adding(40)
    norms = step_gradients.step_norms(RNN((40, 2), 1), data.val, objective_for(data))
    assert norms.shape == (40,) and torch.isfinite(norms).all()
    # the per-sequence answer is read at the last step: step 1 is 39 tanh-and-W_h factors away
    assert norms[0] < 1e-3 * norms[-1]


def test_measuring_leaves_gradients_random_state_and_mode_as_they_were():
    torch.manual_seed(0)
    data = _adding(12)
    model = RNN((12, 2), 1, dropout=0.5, num_layers=2)
    model.train()
    before = torch.get_rng_state()
    first = step_gradients.step_norms(model, data.val, objective_for(data))
    assert all(p.grad is None for p in model.parameters()) and model.training
    assert torch.equal(torch.get_rng_state(), before)
    # eval mode inside (no dropout): the same weights give the same numbers
    assert torch.equal(step_gradients.step_norms(model, data.val, objective_for(data)), first)


def test_a_recurrent_run_logs_the_curve_the_column_and_the_picture(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "model=rnn", "dataset=adding", "dataset.n_samples=200", "dataset.length=12",
                           "trainer.epochs=3", "trainer.pictures_every=2", "trainer.progress=none",
                           f"hydra.run.dir={run_dir}")
    assert code == 0, err
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-1] == "grad_norm/first_step" and all(float(r["grad_norm/first_step"]) > 0 for r in rows)
    s = read_summary(run_dir)
    assert s["final"]["grad_norm/first_step"] == pytest.approx(float(rows[-1]["grad_norm/first_step"]), rel=1e-5)
    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("grad_norm/first_step")] == [1, 2, 3]
    assert [e.step for e in acc.Images("pictures/step_gradients")] == [2, 3]  # every 2 epochs, and the last


def test_a_feed_forward_run_has_no_such_column(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "trainer.epochs=1", "trainer.progress=none", f"hydra.run.dir={run_dir}")
    assert code == 0, err
    with open(run_dir / "metrics.csv", newline="") as f:
        assert "grad_norm/first_step" not in next(csv.reader(f))
    assert "grad_norm/first_step" not in read_summary(run_dir)["final"]
