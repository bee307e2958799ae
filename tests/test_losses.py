"""`loss=<name>` resolved against the dataset, and what counts as a right answer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import read_summary

from nnexp.errors import ConfigError
from nnexp.losses import make_objective


def classification(name: str, num_classes: int):
    return make_objective(name, "classification", num_classes, None)


@pytest.mark.parametrize(
    ("num_classes", "expected", "num_outputs"),
    [(2, "bce", 1), (3, "cross_entropy", 3), (10, "cross_entropy", 10)],
)
def test_auto_picks_by_number_of_classes(num_classes, expected, num_outputs):
    obj = classification("auto", num_classes)
    assert obj.name == expected and obj.num_outputs == num_outputs
    assert obj.correct is not None


@pytest.mark.parametrize("name", ["auto", "mse"])
@pytest.mark.parametrize("target_dim", [None, 1, 3])
def test_regression_uses_mse_and_has_no_accuracy(name, target_dim):
    obj = make_objective(name, "regression", None, target_dim)
    assert obj.name == "mse" and obj.num_outputs == (target_dim or 1) and obj.correct is None


def test_regression_with_a_tolerance_counts_answers_within_it_as_right():
    obj = make_objective("auto", "regression", None, 2, tolerance=0.1)
    out = torch.tensor([[1.0, 1.0], [1.05, 0.0], [1.0, 0.5]])  # (B, 2)
    y = torch.tensor([[1.0, 1.09], [1.0, 0.0], [1.0, 0.0]])
    # right only where every dimension is within 0.1: rows 0 and 1
    assert obj.correct is not None and obj.correct(out, y).item() == 2
    assert obj.units(y) == 3


def test_regression_mse_value_with_1d_targets():
    obj = make_objective("auto", "regression", None, 1)
    out = torch.tensor([[1.0], [2.0], [4.0]])  # (B, 1)
    y = torch.tensor([1.0, 0.0, 1.0])  # (B,): reshaped to the output's shape, not broadcast to (B, B)
    assert obj.loss(out, y).item() == pytest.approx((0 + 4 + 9) / 3, abs=1e-6)


def test_nll_equals_cross_entropy():
    torch.manual_seed(0)
    out, y = torch.randn(16, 5), torch.randint(0, 5, (16,))
    nll, ce = classification("nll", 5), classification("cross_entropy", 5)
    assert nll.num_outputs == ce.num_outputs == 5
    torch.testing.assert_close(nll.loss(out, y), ce.loss(out, y), rtol=0, atol=1e-6)
    torch.testing.assert_close(ce.loss(out, y), F.cross_entropy(out, y), rtol=0, atol=1e-6)


def test_bce_is_binary_cross_entropy_on_one_logit():
    obj = classification("bce", 2)
    out = torch.tensor([[0.0], [2.0], [-1.0]])  # (B, 1) logits of class 1
    y = torch.tensor([1, 1, 0])
    p = torch.sigmoid(out.squeeze(-1))
    expected = -(torch.log(p[0]) + torch.log(p[1]) + torch.log(1 - p[2])) / 3
    assert obj.loss(out, y).item() == pytest.approx(expected.item(), abs=1e-6)


def test_bce_on_three_classes_is_a_config_error():
    with pytest.raises(ConfigError, match="bce.*2 classes.*3"):
        classification("bce", 3)


@pytest.mark.parametrize("name", ["cross_entropy", "nll", "bce"])
def test_class_losses_on_a_regression_task_are_config_errors(name):
    with pytest.raises(ConfigError, match=f"loss={name}.*regression"):
        make_objective(name, "regression", None, 1)


def test_unknown_loss_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError, match="hinge.*auto, cross_entropy, nll, bce, mse"):
        classification("hinge", 3)


def test_argmax_correct_counts_right_answers():
    obj = classification("cross_entropy", 3)
    out = torch.tensor([[5.0, 0.0, 0.0], [0.0, 1.0, 2.0], [0.0, 3.0, 1.0], [1.0, 0.0, 0.0]])
    y = torch.tensor([0, 2, 0, 0])  # right, right, wrong, right
    assert obj.correct(out, y).item() == 3


def test_binary_correct_thresholds_the_logit_at_zero():
    obj = classification("auto", 2)
    out = torch.tensor([[3.0], [-0.5], [0.2], [-2.0]])  # predicts 1, 0, 1, 0
    y = torch.tensor([1, 1, 1, 0])
    assert obj.correct(out, y).item() == 3


def test_mse_on_classes_compares_with_one_hot_targets():
    obj = classification("mse", 2)
    assert obj.num_outputs == 2
    out = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 1])  # one-hot [[1, 0], [0, 1]]: squared errors 0, 0, 0, 1
    assert obj.loss(out, y).item() == pytest.approx(0.25, abs=1e-7)
    assert obj.correct(out, y).item() == 1  # argmax of [0, 0] is class 0, wrong


@pytest.mark.parametrize("name", ["cross_entropy", "nll", "mse"])
def test_the_loss_option_reaches_the_run(run_cli, tmp_path, name):
    """`loss=<name>` on two classes, where auto would pick bce: the run trains with the loss asked for."""
    code, _, err = run_cli("train", "dataset=xor", f"loss={name}", "trainer.epochs=1", "trainer.progress=none",
                           "trainer.checkpoints=false", f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err
    assert read_summary(tmp_path / "r")["loss"] == name
