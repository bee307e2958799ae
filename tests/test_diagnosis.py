"""diagnose() on hand-made curves: each label, its reason in numbers, and a suggestion that fits the run.

The facts about a run come from the real config of every model (as `nnexp train` builds it), so every
override a suggestion names is checked against that config: the key exists, the value is a new one.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import pytest
import yaml
from conftest import read_summary
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from nnexp import config
from nnexp.build import build
from nnexp.context import RunContext
from nnexp.diagnosis import Diagnosis, RunFacts, diagnose


def curves(train, val, acc=None):
    """History rows as fit() writes them; epochs count from 1. ``acc``: one train/acc for all, or one each."""
    rows = []
    for epoch, (t, v) in enumerate(zip(train, val, strict=True), start=1):
        row = {"epoch": epoch, "train/loss": t, "val/loss": v}
        if acc is not None:
            row["train/acc"] = acc[epoch - 1] if isinstance(acc, list) else acc
        rows.append(row)
    return rows


@functools.cache
def composed(*overrides: str) -> tuple[DictConfig, RunFacts]:
    """The config `nnexp train <overrides>` composes and the facts its run gives the diagnosis (built as the
    run builds them: the model included, which says whether it is linear)."""
    config.register()
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, "trainer.threads=1"], return_hydra_config=True)
    ctx = RunContext.from_hydra(cfg.hydra, run_dir=Path("never-written"))
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, build(cfg, ctx).facts


def facts(*overrides: str) -> RunFacts:
    return composed(*overrides)[1]


DEFAULT = facts()  # `nnexp train`: the over-sized MLP, Adam, early stopping


# val/loss minimum 0.5 at epoch 3, then +30% by epoch 6 while train/loss keeps falling
OVERFIT = curves([1.0, 0.6, 0.4, 0.3, 0.2, 0.1], [1.0, 0.6, 0.5, 0.55, 0.6, 0.65], acc=1.0)
# `regularizer=l2 regularizer.dropout=0.3` (issue 16): the weight penalty holds train/loss near 0.01, so it
# no longer falls, while val/loss ends 18% above its minimum with a gap of 0.54
APART = curves([1.2, 0.3, 0.05, 0.012, 0.0115, 0.0112, 0.0111, 0.011],
               [1.1, 0.6, 0.5, 0.47, 0.49, 0.51, 0.53, 0.5546], acc=1.0)
UNDERFIT = curves([1.0, 0.9, 0.8, 0.75, 0.72, 0.71], [1.0, 0.9, 0.82, 0.78, 0.76, 0.75], acc=0.6)
STILL_FALLING = curves([1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1], [1.0, 0.8, 0.6, 0.45, 0.35, 0.3, 0.25, 0.2],
                       acc=0.95)
PLATEAU = curves([0.693, 0.692, 0.693, 0.691, 0.692], [0.69, 0.69, 0.69, 0.69, 0.69], acc=0.5)
GOOD_FIT = curves([1.0, 0.5, 0.3, 0.25, 0.24, 0.24], [1.0, 0.55, 0.35, 0.3, 0.3, 0.31], acc=0.97)
DIVERGED = curves([1.0, 0.8, 0.9, math.nan], [1.0, 0.9, 1.0, math.nan])


def test_overfit_reason_names_the_validation_minimum():
    d = diagnose(OVERFIT, DEFAULT)
    assert d.label == "overfit"
    assert "0.5 at epoch 3" in d.reason
    assert "+30%" in d.reason and "epoch 6" in d.reason
    assert "75%" in d.reason  # train/loss 0.4 -> 0.1 after the minimum


def test_overfit_without_a_cure_suggests_the_regularizer_options():
    d = diagnose(OVERFIT, facts("regularizer=none"))
    assert "early stopping (regularizer=early_stopping)" in d.suggestion
    assert "a weight penalty (regularizer=l2 or regularizer=l1)" in d.suggestion
    assert "dropout (regularizer=dropout)" in d.suggestion
    assert "a smaller model ('model.hidden=[256,256]')" in d.suggestion  # half of the default [512,512]


def test_overfit_with_early_stopping_says_which_weights_were_kept():
    d = diagnose(OVERFIT, DEFAULT)
    assert "kept the weights of epoch 3" in d.suggestion
    assert "early_stopping" not in d.suggestion  # already in use
    # keys, not options: regularizer=l2 would switch early stopping off
    assert "regularizer.weight_decay=0.001" in d.suggestion and "regularizer.dropout=0.5" in d.suggestion
    assert "regularizer=" not in d.suggestion


def test_overfit_suggests_only_cures_not_in_use():
    d = diagnose(OVERFIT, facts("regularizer=all"))  # L2, L1, dropout 0.5 and early stopping
    assert "stronger weight penalty (regularizer.weight_decay=0.01)" in d.suggestion
    assert "dropout" not in d.suggestion and "early stopping (" not in d.suggestion
    assert "smaller model" in d.suggestion


def test_a_model_without_dropout_layers_is_not_told_to_use_dropout():
    d = diagnose(OVERFIT, facts("model=perceptron", "dataset=xor", "regularizer=none"))
    assert d.label == "overfit" and "dropout" not in d.suggestion
    assert "smaller model" not in d.suggestion  # the perceptron has no widths to halve


def test_val_loss_far_above_its_minimum_with_a_wide_gap_is_overfit_not_a_good_fit():
    d = diagnose(APART, facts("regularizer=l2", "regularizer.dropout=0.3"))
    assert d.label == "overfit"
    assert "minimum 0.47 at epoch 4" in d.reason and "+18%" in d.reason and "gap val - train = 0.544" in d.reason
    assert "more dropout (regularizer.dropout=0.5)" in d.suggestion
    assert "regularizer.weight_decay=0.01" in d.suggestion


def test_val_minimum_at_the_last_epoch_is_not_overfit():
    d = diagnose(curves([1.0, 0.6, 0.4, 0.3], [1.2, 0.9, 0.8, 0.79], acc=1.0), DEFAULT)
    assert d.label != "overfit"


def test_good_fit():
    d = diagnose(GOOD_FIT, DEFAULT)
    assert d.label == "good fit"
    assert "0.31" in d.reason and "minimum 0.3 at epoch 4" in d.reason
    assert "gap val - train = 0.07" in d.reason


def test_underfit_when_train_accuracy_is_low():
    d = diagnose(UNDERFIT, DEFAULT)
    assert d.label == "underfit"
    assert "train/acc is only 0.60 at epoch 6" in d.reason
    assert "more capacity ('model.hidden=[1024,1024]')" in d.suggestion
    assert "more epochs (trainer.epochs=300)" in d.suggestion and "optimizer.lr=0.003" in d.suggestion


def test_underfit_after_early_stopping_asks_for_patience_not_epochs():
    d = diagnose(UNDERFIT, DEFAULT, status="early_stopped")
    assert "regularizer.early_stopping.patience=40" in d.suggestion and "trainer.epochs" not in d.suggestion


def test_underfit_when_both_losses_still_fall():
    d = diagnose(STILL_FALLING, DEFAULT)
    assert d.label == "underfit"
    assert "still fell over the last 2 epochs" in d.reason and "0.3 -> 0.2" in d.reason
    assert "trainer.epochs=300" in d.suggestion


def test_plateau_names_only_what_is_not_in_use():
    d = diagnose(PLATEAU, DEFAULT)  # Adam and relu already
    assert d.label == "plateau"
    assert "0.693" in d.reason and "5 epochs" in d.reason
    assert "optimizer.lr=0.01 or optimizer.lr=0.0001" in d.suggestion
    assert "optimizer=adam" not in d.suggestion and "model.activation" not in d.suggestion
    d = diagnose(PLATEAU, facts("optimizer=sgd", "model.activation=sigmoid"))
    assert "Adam (optimizer=adam)" in d.suggestion
    assert "relu instead of a saturating sigmoid (model.activation=relu)" in d.suggestion
    d = diagnose(PLATEAU, facts("model=resnet", "model.skip=false"))
    assert "the shortcuts back (model.skip=true)" in d.suggestion


def test_diverged_names_the_first_non_finite_epoch():
    d = diagnose(DIVERGED, DEFAULT)
    assert d.label == "diverged" and "epoch 4" in d.reason
    assert "optimizer.lr=0.0001" in d.suggestion and "trainer.grad_clip=1.0" in d.suggestion
    d = diagnose(curves([1.0, 0.8, 0.9], [1.0, math.inf, 1.0]), facts("trainer.grad_clip=1.0"))
    assert d.label == "diverged" and "epoch 2" in d.reason and "grad_clip" not in d.suggestion


def test_diverged_status_wins_over_finite_curves():
    d = diagnose(OVERFIT, DEFAULT, status="diverged")
    assert d.label == "diverged" and "epoch 6" in d.reason


def test_no_epoch_is_underfit_and_serializes():
    d = diagnose([], DEFAULT)
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
    assert diagnose(XOR_SOLVED, DEFAULT).label == "good fit"


def test_a_run_that_converged_in_epoch_1_is_not_a_plateau():
    d = diagnose(curves([0.02, 0.0195, 0.0192, 0.0191], [0.03, 0.03, 0.03, 0.03], acc=1.0), DEFAULT)
    assert d.label == "good fit"


# --- a linear model on data it cannot separate ----------------------------------------------------------


@pytest.mark.parametrize(("overrides", "cure"), [
    (("model=perceptron", "dataset=xor"), "a hidden layer (model=mlp)"),
    (("model=sigmoid_unit", "dataset=xor"), "a hidden layer (model=mlp)"),
    (("model=mlp", "model.hidden=[]", "dataset=xor"), "a hidden layer ('model.hidden=[8]')"),
])
def test_a_linear_model_stuck_below_fitting_its_data_cannot_separate(overrides, cure):
    d = diagnose(curves([0.75, 0.74, 0.745, 0.74, 0.742], [0.74] * 5, acc=[0.51, 0.55, 0.53, 0.56, 0.54]),
                 facts(*overrides))
    assert d.label == "cannot separate"
    assert "is linear" in d.reason and "0.56 or below for 5 epochs" in d.reason
    assert "not linearly separable" in d.suggestion and "more epochs will not help" in d.suggestion
    assert cure in d.suggestion


def test_a_linear_model_still_learning_is_underfit_not_stuck():
    rising = curves([0.7, 0.6, 0.5, 0.45, 0.4], [0.7, 0.6, 0.5, 0.45, 0.4], acc=[0.5, 0.6, 0.7, 0.75, 0.85])
    d = diagnose(rising, facts("model=perceptron", "dataset=moons"))
    assert d.label == "underfit" and "trainer.epochs=300" in d.suggestion and "model=mlp" in d.suggestion


def test_a_model_with_hidden_layers_is_never_cannot_separate():
    assert diagnose(UNDERFIT, DEFAULT).label == "underfit" and not DEFAULT.linear


# --- every model, every situation: a suggestion names only what the run has, and something new ---------

MODELS = sorted(p.stem for p in (config.config_dir() / "model").glob("*.yaml"))
# sequence models read sequences, the single units two classes; the image models run on the default digits
DATASET = {"lstm": "dataset=adding", "rnn": "dataset=adding", "transformer": "dataset=adding", "perceptron": "dataset=xor",
           "sigmoid_unit": "dataset=xor"}
RUNS = [(f"model={m}", *([DATASET[m]] if m in DATASET else [])) for m in MODELS] + [
    # the optimizers and regularizers that change what a cure may say
    ("regularizer=none", "optimizer=sgd", "model.activation=sigmoid"),
    ("regularizer=l2", "regularizer.dropout=0.3"),
    ("regularizer=all", "optimizer=rmsprop", "trainer.grad_clip=1.0"),
    ("model=resnet", "model.skip=false", "optimizer=momentum", "regularizer=l1"),
    ("model=lstm", "dataset=adding", "optimizer=adamw", "regularizer=dropout"),
    ("model=transformer", "dataset=adding", "model.activation=tanh", "regularizer=none"),
    ("model=lenet5", "regularizer=dropout", "regularizer.dropout=0.9"),
    ("model=mlp", "model.hidden=[]", "dataset=xor", "regularizer=none"),
    ("model=perceptron", "dataset=xor", "optimizer=sgd", "trainer.batch_size=1", "regularizer=none"),
]
# situation -> (curves, status, the label; a linear model that never fits its data instead: cannot separate)
SITUATIONS = {
    "underfit": (UNDERFIT, "completed", "underfit"),
    "underfit, early stopped": (UNDERFIT, "early_stopped", "underfit"),
    "still falling": (STILL_FALLING, "completed", "underfit"),
    "overfit": (OVERFIT, "completed", "overfit"),
    "overfit, val apart": (APART, "completed", "overfit"),
    "plateau": (PLATEAU, "completed", "plateau"),
    "diverged": (DIVERGED, "diverged", "diverged"),
    "good fit": (GOOD_FIT, "completed", "good fit"),
    "no epoch": ([], "interrupted", "underfit"),
}
GROUPS = {p.name for p in config.config_dir().iterdir() if p.is_dir()}
KEY = r"(?:model|optimizer|regularizer|trainer|dataset|scheduler)\.[\w.]+"
# `key=value` (the value up to a space or a closing parenthesis), `group=option`, or a bare `(key)`
NAMED = re.compile(rf"(?<![\w.])(?:({KEY})=([^\s)]+)|(\w+)=(\w+)|({KEY})(?=\)))")
_ABSENT = object()


def named(suggestion: str) -> list[tuple[str, str | None]]:
    """Every (key or group, value or option) a suggestion names; value None for a bare key."""
    out = []
    for key, value, group, option, bare in NAMED.findall(suggestion):
        out.append((key, value.rstrip(",;.'")) if key else (group, option) if group else (bare, None))
    return out


def check_names_only_what_the_run_has(d: Diagnosis, cfg: DictConfig, f: RunFacts) -> None:
    names = named(d.suggestion)
    assert names, f"{d.suggestion!r} names nothing to type"
    for key, value in names:
        if "." not in key:  # group=option: an option on disk, not the one chosen
            assert key in GROUPS and (config.config_dir() / key / f"{value}.yaml").is_file(), (key, value)
            assert f.choices[key] != value, f"{key}={value} is the current choice"
            continue
        if value is not None and "[" in value:  # typed as shown in zsh, an unquoted [..] is a glob
            assert f"'{key}={value}'" in d.suggestion, f"{key}={value} is not quoted for the shell"
        current = OmegaConf.select(cfg, key, default=_ABSENT)
        assert current is not _ABSENT, f"{key} is not a key of this run ({d.suggestion!r})"
        if value is not None:
            if isinstance(current, DictConfig | ListConfig):
                current = OmegaConf.to_container(current)
            assert yaml.safe_load(value) != current, f"{key}={value} is the current value"
        # regularizers that act only through the model or the optimizer
        if key == "regularizer.dropout" or (key, value) == ("regularizer", "dropout"):
            assert "dropout" in cfg.model
        if key == "regularizer.weight_decay":
            assert "weight_decay" in cfg.optimizer
    if ("regularizer", "l2") in names:
        assert "weight_decay" in cfg.optimizer


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
@pytest.mark.parametrize("overrides", RUNS, ids=" ".join)
def test_every_suggestion_names_keys_of_the_run_and_new_values(overrides, situation):
    cfg, f = composed(*overrides)
    history, status, label = SITUATIONS[situation]
    d = diagnose(history, f, status)
    stuck = f.linear and history and max(h.get("train/acc") or 1.0 for h in history) < 0.9
    assert d.label == ("cannot separate" if stuck and status != "diverged" else label), d
    check_names_only_what_the_run_has(d, cfg, f)


def test_labels_read_as_words():
    labels = {diagnose(history, DEFAULT, status).label for history, status, _ in SITUATIONS.values()}
    labels.add(diagnose(PLATEAU, facts("model=perceptron", "dataset=xor")).label)
    assert labels == {"underfit", "overfit", "plateau", "diverged", "good fit", "cannot separate"}


def test_the_table_parser_sees_every_form():
    assert named("try a (model.hidden=[256,256]), b (regularizer=l2 or regularizer.l1=0.0001), c (trainer.epochs)") \
        == [("model.hidden", "[256,256]"), ("regularizer", "l2"), ("regularizer.l1", "0.0001"),
            ("trainer.epochs", None)]


# --- the real thing: a single unit on XOR, as typed ------------------------------------------------------


@pytest.mark.parametrize("name", ["perceptron", "sigmoid_unit"])
def test_a_single_unit_on_xor_is_told_it_cannot_separate(run_cli, tmp_path, name):
    code, out, err = run_cli("train", f"model={name}", "dataset=xor", "trainer.epochs=5", "trainer.progress=none",
                             "trainer.threads=1", "trainer.checkpoints=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err
    diagnosis = read_summary(tmp_path / "run")["diagnosis"]
    assert diagnosis["label"] == "cannot separate", diagnosis
    assert "a hidden layer (model=mlp)" in diagnosis["suggestion"]
    assert "Diagnosis: cannot separate (" in " ".join(out.split())
