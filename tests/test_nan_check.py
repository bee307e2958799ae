"""A NaN/Inf loss without a host sync per step (how nnexp trains on a GPU), tested on the CPU.

On the CPU each step's loss is read before its optimizer step (tests/test_resume.py,
tests/test_train.py). On a GPU reading it would stall the device at every step, so the
loop remembers the first bad step on the device, finds it at the epoch's end and undoes
the epoch. ``FitSettings(check_every_step=False)`` runs that path here.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from conftest import read_summary

from nnexp import build
from nnexp.data import synthetic
from nnexp.early_stopping import EarlyStopping
from nnexp.loop import FitSettings, fit, train_one_epoch
from nnexp.losses import make_objective
from nnexp.models.mlp import MLP

BREAK_AT = 40  # the 40th training step: with 12 steps an epoch, epoch 4, step 4


def _breaking(objective, at: int = BREAK_AT):
    """The objective with a NaN loss at training step ``at`` (counted over training steps only)."""
    calls = {"train": 0}

    def loss(out, y):
        value = objective.loss(out, y)
        if torch.is_grad_enabled():
            calls["train"] += 1
            if calls["train"] == at:
                return value * math.nan
        return value

    return dataclasses.replace(objective, loss=loss)


def _moons():
    return synthetic.moons(n_samples=256, val_fraction=0.25, seed=0)  # 192 training samples


def _fit(check_every_step: bool):
    torch.manual_seed(0)
    data = _moons()  # 12 steps of 16
    objective = _breaking(make_objective("auto", "classification", 2, None))
    model = MLP((2,), objective.num_outputs, hidden=[8])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    ends: dict[int, dict] = {}
    settings = FitSettings(epochs=10, batch_size=16, check_every_step=check_every_step)
    result = fit(model, data, objective, optimizer, None, settings, EarlyStopping(enabled=False),
                 on_epoch_end=lambda e, m, i: ends.update({e: copy.deepcopy(model.state_dict())}))
    return result, model, ends


@pytest.mark.parametrize("check_every_step", [True, False])
def test_a_nan_step_ends_the_run_named_by_epoch_and_step_with_finite_weights(check_every_step):
    result, model, ends = _fit(check_every_step)
    assert result.status == "diverged" and result.epochs_run == 4
    assert result.message.startswith("train/loss became nan in epoch 4, step 4; the weights are those of ")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    if not check_every_step:  # the epoch is undone: the weights the previous epoch ended with
        assert result.message.endswith("those of the end of epoch 3")
        assert all(torch.equal(model.state_dict()[k], ends[3][k]) for k in ends[3])


def test_without_the_rollback_the_deferred_check_would_keep_nan_weights(monkeypatch):
    """Negative control: the test above catches an epoch that is not undone."""
    from nnexp import train_state

    monkeypatch.setattr(train_state.EpochStart, "restore", lambda self, model, optimizer, scaler: None)
    _, model, _ = _fit(check_every_step=False)
    assert not all(torch.isfinite(p).all() for p in model.parameters())


def _host_reads(monkeypatch, steps: int, check_every_step: bool) -> int:
    """How often one training epoch of ``steps`` steps reads a number from its tensors into Python."""
    torch.manual_seed(0)
    x = torch.randn(16 * steps, 2)
    split = dataclasses.replace(_moons().train, x=x, y=(x[:, 0] > 0).long())
    objective = make_objective("auto", "classification", 2, None)
    model = MLP((2,), objective.num_outputs, hidden=[8])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # SGD: the optimizer itself reads nothing
    settings = FitSettings(epochs=1, batch_size=16, check_every_step=check_every_step)
    reads = {"n": 0}
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, **kwargs):
            reads["n"] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    train_one_epoch(model, split, objective, optimizer, settings, torch.Generator().manual_seed(0), lambda: False)
    monkeypatch.undo()
    return reads["n"]


def test_the_deferred_check_reads_the_device_once_per_epoch_not_once_per_step(monkeypatch):
    short, long = _host_reads(monkeypatch, 10, False), _host_reads(monkeypatch, 40, False)
    assert short == long <= 2  # the epoch's sums, read at its end
    # the CPU's check reads every step's loss: it grows with the steps
    assert _host_reads(monkeypatch, 40, True) - _host_reads(monkeypatch, 10, True) >= 30


def test_a_run_with_the_deferred_check_exits_3_and_never_checkpoints_nan(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(build, "reads_loss_every_step", lambda device: False)  # as on a GPU
    real = build.make_objective
    monkeypatch.setattr(build, "make_objective", lambda *a, **k: _breaking(real(*a, **k)))
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "dataset=moons", "dataset.n_samples=256", "model.hidden=[8]",
                           "regularizer=none", "trainer.batch_size=16", "trainer.epochs=10",
                           "trainer.progress=none", f"hydra.run.dir={run_dir}")
    assert code == 3
    assert ("nnexp: error: training diverged: train/loss became nan in epoch 4, step 4; the weights are those of "
            "the end of epoch 3") in err
    s = read_summary(run_dir)
    assert s["status"] == "diverged" and s["epochs_run"] == 4
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 3 and all(torch.isfinite(t).all() for t in last["model"].values())
