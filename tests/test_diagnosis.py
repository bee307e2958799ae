"""diagnose() on hand-made curves: each label, its reason in numbers, and a suggestion that fits."""

from __future__ import annotations

import math

from nnexp.diagnosis import diagnose


def curves(train, val, acc=None):
    """History rows as fit() writes them; epochs count from 1."""
    rows = []
    for epoch, (t, v) in enumerate(zip(train, val, strict=True), start=1):
        row = {"epoch": epoch, "train/loss": t, "val/loss": v}
        if acc is not None:
            row["train/acc"] = acc
        rows.append(row)
    return rows


# val/loss minimum 0.5 at epoch 3, then +30% by epoch 6 while train/loss keeps falling
OVERFIT = curves([1.0, 0.6, 0.4, 0.3, 0.2, 0.1], [1.0, 0.6, 0.5, 0.55, 0.6, 0.65], acc=1.0)


def test_overfit_reason_names_the_validation_minimum():
    d = diagnose(OVERFIT)
    assert d.label == "overfit"
    assert "0.5 at epoch 3" in d.reason
    assert "+30%" in d.reason and "epoch 6" in d.reason
    assert "75%" in d.reason  # train/loss 0.4 -> 0.1 after the minimum


def test_overfit_without_early_stopping_suggests_it():
    d = diagnose(OVERFIT)
    assert "early stopping" in d.suggestion and "regularizer=early_stopping" in d.suggestion
    assert "dropout" in d.suggestion and "weight penalty" in d.suggestion


def test_overfit_with_early_stopping_says_which_weights_were_kept():
    d = diagnose(OVERFIT, active={"early_stopping"})
    assert d.label == "overfit"
    assert "kept the weights of epoch 3" in d.suggestion
    assert "regularizer=early_stopping" not in d.suggestion  # already in use
    assert "dropout" in d.suggestion


def test_overfit_suggests_only_cures_not_in_use():
    d = diagnose(OVERFIT, active={"early_stopping", "weight_decay", "dropout"})
    assert "weight penalty" not in d.suggestion and "regularizer=dropout" not in d.suggestion
    assert "smaller model" in d.suggestion


def test_val_minimum_at_the_last_epoch_is_not_overfit():
    d = diagnose(curves([1.0, 0.6, 0.4, 0.3], [1.2, 0.9, 0.8, 0.79], acc=1.0))
    assert d.label != "overfit"


def test_good_fit():
    d = diagnose(curves([1.0, 0.5, 0.3, 0.25, 0.24, 0.24], [1.0, 0.55, 0.35, 0.3, 0.3, 0.31], acc=0.97))
    assert d.label == "good_fit"
    assert "0.31" in d.reason and "minimum 0.3 at epoch 4" in d.reason
    assert "gap val - train = 0.07" in d.reason


def test_underfit_when_train_accuracy_is_low():
    d = diagnose(curves([1.0, 0.9, 0.8, 0.75, 0.72, 0.71], [1.0, 0.9, 0.82, 0.78, 0.76, 0.75], acc=0.6))
    assert d.label == "underfit"
    assert "train/acc is only 0.60 at epoch 6" in d.reason
    assert "capacity" in d.suggestion


def test_underfit_when_both_losses_still_fall():
    d = diagnose(curves([1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1], [1.0, 0.8, 0.6, 0.45, 0.35, 0.3, 0.25, 0.2],
                        acc=0.95))
    assert d.label == "underfit"
    assert "still fell over the last 2 epochs" in d.reason and "0.3 -> 0.2" in d.reason
    assert "trainer.epochs" in d.suggestion


def test_plateau_when_train_loss_does_not_move():
    d = diagnose(curves([0.693, 0.692, 0.693, 0.691, 0.692], [0.69, 0.69, 0.69, 0.69, 0.69], acc=0.5))
    assert d.label == "plateau"
    assert "0.693" in d.reason and "5 epochs" in d.reason
    assert "optimizer.lr" in d.suggestion


def test_diverged_names_the_first_non_finite_epoch():
    d = diagnose(curves([1.0, 0.8, 0.9, math.nan], [1.0, 0.9, 1.0, math.nan]))
    assert d.label == "diverged" and "epoch 4" in d.reason
    assert "optimizer.lr" in d.suggestion and "grad_clip" in d.suggestion
    d = diagnose(curves([1.0, 0.8, 0.9], [1.0, math.inf, 1.0]))
    assert d.label == "diverged" and "epoch 2" in d.reason


def test_diverged_status_wins_over_finite_curves():
    d = diagnose(OVERFIT, status="diverged")
    assert d.label == "diverged" and "epoch 6" in d.reason


def test_no_epoch_is_underfit_and_serializes():
    d = diagnose([])
    assert d.label == "underfit" and "no epoch" in d.reason
    assert d.to_dict() == {"label": d.label, "reason": d.reason, "suggestion": d.suggestion}


# `nnexp train dataset=xor trainer.epochs=15 regularizer=none` (the shipped configs, Adam): 100% train
# and val accuracy, val/loss 1.5e-4, yet both losses still shrink by >10% relative per few epochs.
XOR_SOLVED = curves(
    [0.2917, 0.01888, 0.00226, 7.76e-4, 4.59e-4, 3.65e-4, 3.21e-4, 2.91e-4, 2.73e-4, 2.54e-4, 2.41e-4,
     2.27e-4, 2.13e-4, 2.01e-4, 1.89e-4],
    [0.0470, 0.00396, 9.58e-4, 4.79e-4, 3.44e-4, 2.89e-4, 2.59e-4, 2.39e-4, 2.22e-4, 2.08e-4, 1.95e-4,
     1.82e-4, 1.71e-4, 1.61e-4, 1.52e-4],
    acc=1.0,
)


def test_a_solved_run_is_not_underfit():
    assert diagnose(XOR_SOLVED).label == "good_fit"


def test_a_run_that_converged_in_epoch_1_is_not_a_plateau():
    d = diagnose(curves([0.02, 0.0195, 0.0192, 0.0191], [0.03, 0.03, 0.03, 0.03], acc=1.0))
    assert d.label == "good_fit"
