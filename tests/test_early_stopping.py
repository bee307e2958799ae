"""Early stopping by itself (Keras semantics), then inside fit(): stop, restore the best weights, diverge."""

from __future__ import annotations

import copy
import dataclasses
import io
import math

import numpy as np
import pytest
import torch

from nnexp.data import split_arrays, synthetic
from nnexp.early_stopping import EarlyStopping
from nnexp.loop import FitSettings, fit
from nnexp.losses import make_objective
from nnexp.models.mlp import MLP


def feed(stopper: EarlyStopping, values, monitor: str = "val/loss", start: int = 1) -> list[bool]:
    """Feed one monitored value per epoch; returns the ``improved`` flags."""
    return [stopper.update(epoch, {monitor: v}) for epoch, v in enumerate(values, start=start)]


def test_patience_counts_consecutive_epochs_without_improvement():
    stopper = EarlyStopping(patience=3)
    assert feed(stopper, [1.0, 0.9, 0.95, 0.93]) == [True, True, False, False]
    assert not stopper.should_stop  # two bad epochs so far
    feed(stopper, [0.91], start=5)
    assert stopper.should_stop  # the third bad epoch in a row stops the run
    assert (stopper.best_epoch, stopper.best_value) == (2, 0.9)
    assert "3 epochs" in stopper.reason and "epoch 2" in stopper.reason


def test_an_improvement_resets_the_count():
    stopper = EarlyStopping(patience=3)
    feed(stopper, [1.0, 1.1, 1.2, 0.8, 0.9, 0.9])
    assert not stopper.should_stop and stopper.best_epoch == 4 and stopper.wait == 2
    feed(stopper, [0.85], start=7)
    assert stopper.should_stop


@pytest.mark.parametrize("patience", [0, 1])
def test_patience_zero_and_one_stop_at_the_first_bad_epoch(patience):
    stopper = EarlyStopping(patience=patience)
    feed(stopper, [1.0, 0.5])
    assert not stopper.should_stop
    feed(stopper, [0.5], start=3)  # equal is not better
    assert stopper.should_stop


def test_improvement_smaller_than_min_delta_does_not_count():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    assert feed(stopper, [1.0, 0.95, 0.85]) == [True, False, True]  # 0.05 < 0.1, then 0.15 > 0.1
    assert (stopper.best_epoch, stopper.best_value) == (3, 0.85)
    feed(stopper, [0.80, 0.76], start=4)  # both within 0.1 of 0.85
    assert stopper.should_stop and stopper.best_epoch == 3


def test_mode_max_looks_for_higher_values():
    stopper = EarlyStopping(monitor="val/acc", mode="max", patience=2)
    assert feed(stopper, [0.5, 0.6, 0.6, 0.55], monitor="val/acc") == [True, True, False, False]
    assert stopper.should_stop and (stopper.best_epoch, stopper.best_value) == (2, 0.6)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_monitored_value_stops_at_once(bad):
    stopper = EarlyStopping(patience=10)
    assert feed(stopper, [1.0, bad]) == [True, False]
    assert stopper.should_stop
    assert str(bad) in stopper.reason and "epoch 2" in stopper.reason
    assert (stopper.best_epoch, stopper.best_value) == (1, 1.0)


def test_disabled_never_stops_but_tracks_the_best_epoch():
    stopper = EarlyStopping(patience=1, enabled=False)
    feed(stopper, [1.0, 0.4, 0.7] + [0.9] * 30 + [math.nan])
    assert not stopper.should_stop
    assert (stopper.best_epoch, stopper.best_value) == (2, 0.4)


@pytest.mark.parametrize("kwargs", [{"mode": "avg"}, {"patience": -1}, {"min_delta": -0.1}])
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        EarlyStopping(**kwargs)


def test_state_dict_round_trip_resumes_the_same_decisions():
    """The state travels inside checkpoints (torch.save); a resumed stopper behaves as the original."""
    original = EarlyStopping(patience=3)
    feed(original, [1.0, 0.8, 0.9, 0.85])
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    resumed = EarlyStopping(patience=3)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.state_dict() == original.state_dict()
    assert (resumed.best_epoch, resumed.wait) == (2, 2)
    assert feed(resumed, [0.95], start=5) == feed(original, [0.95], start=5) == [False]
    assert resumed.should_stop and original.should_stop
    assert resumed.reason == original.reason


# ---------------------------------------------------------------------------
# fit(): a tiny moons problem, a few epochs, the weights seen by the epoch hook


def run_fit(stopper: EarlyStopping, epochs: int, *, lr: float = 0.05, optimizer=torch.optim.Adam,
            data=None, objective=None, on_epoch=None, stop_requested=lambda: False):
    """Train an MLP; returns (result, model, {epoch: state_dict copy}, [(epoch, metrics, improved)])."""
    data = data if data is not None else synthetic.moons(n_samples=64)
    if objective is None:
        objective = make_objective("auto", data.task, data.num_classes, data.target_dim)
    torch.manual_seed(0)
    model = MLP(data.input_shape, objective.num_outputs, hidden=[64, 64])
    optimizer = optimizer(model.parameters(), lr=lr)
    snapshots, calls = {}, []

    def on_epoch_end(epoch, metrics, improved):
        snapshots[epoch] = copy.deepcopy(model.state_dict())
        calls.append((epoch, dict(metrics), improved))
        if on_epoch is not None:
            on_epoch(epoch)

    result = fit(model, data, objective, optimizer, None, FitSettings(epochs=epochs, batch_size=16),
                 stopper, on_epoch_end=on_epoch_end, stop_requested=stop_requested)
    return result, model, snapshots, calls


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fit_stops_early_and_restores_the_best_epoch():
    stopper = EarlyStopping(patience=3, restore_best=True)
    result, model, snapshots, calls = run_fit(stopper, epochs=60)
    best = stopper.best_epoch
    assert result.status == "early_stopped"
    assert result.epochs_run == best + 3 < 60  # stopped on the third bad epoch after the best
    assert result.epochs_run > best >= 1
    assert result.restored_best is True
    assert "did not improve for 3 epochs" in result.message
    assert same_weights(model.state_dict(), snapshots[best])
    assert not same_weights(model.state_dict(), snapshots[result.epochs_run])
    # the hook saw every epoch once, flagged exactly the improving ones, and the best is the val minimum
    assert [c[0] for c in calls] == list(range(1, result.epochs_run + 1))
    val = [c[1]["val/loss"] for c in calls]
    assert [c[2] for c in calls] == [v < min(val[:i], default=math.inf) for i, v in enumerate(val)]
    assert stopper.best_value == min(val) == val[best - 1]
    assert [h["epoch"] for h in result.history] == list(range(1, result.epochs_run + 1))
    assert {"train/loss", "val/loss", "train/acc", "val/acc", "lr"} <= set(result.history[0])


def test_fit_min_delta_stops_after_the_first_epoch():
    """Forced: no later epoch can beat epoch 1 by a margin of 10."""
    stopper = EarlyStopping(patience=2, min_delta=10.0)
    result, model, snapshots, _ = run_fit(stopper, epochs=20)
    assert (result.status, result.epochs_run, stopper.best_epoch) == ("early_stopped", 3, 1)
    assert same_weights(model.state_dict(), snapshots[1])


@pytest.mark.parametrize("restore_best", [True, False])
def test_fit_completed_ends_with_best_weights_only_if_restore_best(restore_best):
    stopper = EarlyStopping(patience=100, min_delta=10.0, restore_best=restore_best)  # best stays epoch 1
    result, model, snapshots, _ = run_fit(stopper, epochs=4)
    assert result.status == "completed" and result.epochs_run == 4 and stopper.best_epoch == 1
    assert result.restored_best is restore_best
    kept = snapshots[1] if restore_best else snapshots[4]
    assert same_weights(model.state_dict(), kept)
    assert not same_weights(snapshots[1], snapshots[4])


def test_fit_with_early_stopping_disabled_runs_every_epoch_and_keeps_the_last_weights():
    stopper = EarlyStopping(patience=0, min_delta=10.0, enabled=False)
    result, model, snapshots, _ = run_fit(stopper, epochs=4)
    assert result.status == "completed" and result.epochs_run == 4
    assert stopper.best_epoch == 1 and not result.restored_best
    assert same_weights(model.state_dict(), snapshots[4])


def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    return split_arrays("linear", x, x @ np.array([1.0, -2.0], dtype=np.float32), val_fraction=0.25)


def test_fit_diverges_with_a_huge_learning_rate():
    """SGD with lr=1e6 on a linear regression: the loss overflows within a few steps."""
    data = _regression_data()
    stopper = EarlyStopping(patience=100)
    result, _, _, calls = run_fit(stopper, epochs=20, lr=1e6, optimizer=torch.optim.SGD, data=data)
    assert result.status == "diverged"
    assert result.epochs_run == len(calls) == len(result.history) < 20
    epoch, metrics, improved = calls[-1]
    assert not (math.isfinite(metrics["train/loss"]) and math.isfinite(metrics["val/loss"]))
    assert improved is False
    assert f"epoch {epoch}" in result.message and "became" in result.message


def test_fit_diverges_when_the_loss_turns_nan_after_epoch_2():
    data = synthetic.moons(n_samples=64)
    base = make_objective("auto", data.task, data.num_classes, data.target_dim)
    broken = {"now": False}

    def loss(out, y):
        value = base.loss(out, y)
        return value * math.nan if broken["now"] else value

    def on_epoch(epoch):
        broken["now"] = epoch >= 2

    stopper = EarlyStopping(patience=100)
    result, _, _, calls = run_fit(stopper, epochs=10, data=data,
                                  objective=dataclasses.replace(base, loss=loss), on_epoch=on_epoch)
    assert result.status == "diverged" and result.epochs_run == 3
    assert result.message == "train/loss became nan in epoch 3, step 1; the weights are those of the step before"
    assert [c[0] for c in calls] == [1, 2, 3]
    assert math.isnan(calls[-1][1]["train/loss"]) and calls[-1][2] is False
    assert all(math.isfinite(c[1]["train/loss"]) for c in calls[:2])
    assert stopper.best_epoch in (1, 2)  # the NaN epoch never becomes the best


def test_fit_interrupted_mid_epoch_does_not_log_the_partial_epoch():
    batches = {"n": 0}

    def stop_requested():
        batches["n"] += 1
        # asked after every batch and after every epoch: 48 samples / 16 = 3 batches, so
        # calls 1-3 are epoch 1's batches, 4 follows epoch 1, 5 is the first batch of epoch 2
        return batches["n"] >= 5

    result, _, _, calls = run_fit(EarlyStopping(patience=100), epochs=10, stop_requested=stop_requested)
    assert result.status == "interrupted" and result.message == "interrupted during epoch 2 after step 1"
    assert result.epochs_run == 1 and len(result.history) == 1 and [c[0] for c in calls] == [1]
