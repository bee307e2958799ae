"""Label a run from its curves: good fit, overfit, underfit, cannot separate, plateau or diverged.

Each label comes with the reason in numbers and a suggestion from the course's toolbox (early
stopping, a weight penalty, dropout, a smaller or bigger model, more data, the learning rate, a
hidden layer), written as overrides the run can take: every ``key=value`` names a key that this
run's config has and a value it does not have yet, every ``group=option`` an option it did not
choose (:class:`RunFacts` says what the run is; ``tests/test_diagnosis.py`` checks every model).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# thresholds, relative to the loss values they compare
OVERFIT_RISE = 0.05  # val/loss ends this much above its minimum ...
OVERFIT_TRAIN_FALL = 0.10  # ... while train/loss fell at least this much after that minimum
# Overfit also when train/loss no longer falls (a weight penalty holds it up) if val/loss ends clearly
# above its minimum while train/loss is under half of it. The numbers: `regularizer=l2
# regularizer.dropout=0.3` ended 18% above its minimum with a gap of 0.54 (train/loss near 0.01, val/loss
# about 0.55: a gap of ~100% of val/loss); a good fit ends within a few % of its minimum with a gap of a
# fifth of val/loss (0.07 at 0.31). 10% and a half sit between the two with room either side.
CLEAR_RISE = 0.10
WIDE_GAP = 0.5  # val/loss - train/loss, relative to val/loss
PLATEAU_CHANGE = 0.05  # train/loss never got this far below its first value
UNDERFIT_ACC = 0.90  # final train accuracy below this: the model does not fit its own data
STILL_FALLING = 0.10  # train and val loss fell this much over the last quarter of the run
STILL_LEARNING = 0.05  # train/acc of the last quarter beat the best before it by this much: not stuck yet
SOLVED_ACC = 0.99  # a run this accurate on its training data is neither stuck nor underfit ...
SOLVED_LOSS = 1e-3  # ... nor is one (without accuracy) whose training loss got this close to zero
WIDTHS = ("hidden", "width", "hidden_size", "d_model", "d_ff")  # the model keys that size its layers


@dataclass(frozen=True)
class Diagnosis:
    label: str
    reason: str
    suggestion: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class RunFacts:
    """What the diagnosis knows of a run besides its curves, as plain values (nnexp/build.py makes it)."""
    choices: Mapping[str, str] = field(default_factory=dict)  # group -> option: model -> mlp, optimizer -> adam
    config: Mapping[str, Any] = field(default_factory=dict)  # dotted key -> resolved value: model.hidden -> [512, 512]
    # one affine map from inputs to class scores (perceptron, sigmoid unit, an MLP without hidden layers):
    # one straight boundary between the classes
    linear: bool = False

    @classmethod
    def of(cls, config: Mapping[str, Any], choices: Mapping[str, str], linear: bool = False) -> RunFacts:
        """From the resolved config as plain dicts (``OmegaConf.to_container(cfg, resolve=True)``)."""
        return cls(dict(choices), dict(_flatten(config)), linear)

    def number(self, key: str) -> float:
        value = self.config.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    @property
    def early_stopping(self) -> bool:
        return bool(self.config.get("regularizer.early_stopping.enabled"))

    @property
    def dropout(self) -> float:
        """The dropout the model applies (0 for a model without dropout layers, whatever regularizer.dropout says)."""
        return self.number("regularizer.dropout") if "model.dropout" in self.config else 0.0

    @property
    def any_cure(self) -> bool:
        return (self.early_stopping or self.dropout > 0 or self.number("regularizer.l1") > 0
                or self.number("regularizer.weight_decay") > 0)


def _flatten(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def diagnose(history: list[dict[str, Any]], facts: RunFacts, status: str = "completed") -> Diagnosis:
    """``history``: one dict per epoch with ``epoch``, ``train/loss``, ``val/loss`` (and optionally acc)."""
    if not history:
        return Diagnosis("underfit", "no epoch finished", "train for at least one epoch (trainer.epochs)")
    train = [h["train/loss"] for h in history]
    val = [h["val/loss"] for h in history]
    epochs = [h["epoch"] for h in history]
    acc = [h.get("train/acc") for h in history]
    # relative changes of a loss near zero mean nothing: a solved run is judged on overfitting alone
    solved = acc[-1] >= SOLVED_ACC if acc[-1] is not None else min(train) < SOLVED_LOSS
    # the first rule that applies labels the run
    return (_diverged(train, val, epochs, status, facts)
            or _cannot_separate(acc, epochs, facts)
            or _overfit(train, val, epochs, facts)
            or _plateau(train, solved, facts)
            or _underfit_accuracy(acc[-1], epochs, status, facts)
            or _still_falling(train, val, solved, status, facts)
            or _good_fit(train, val, epochs))


# --- the overrides a suggestion may name: only keys the run has, never the value it has ---------------------


def _set(f: RunFacts, key: str, value: Any) -> str | None:
    """``key=value``, or None where the run has no such key or has this value already."""
    if key not in f.config or value is None or f.config[key] == value:
        return None
    override = f"{key}={_text(value)}"
    return f"'{override}'" if "[" in override else override  # quoted: zsh reads an unquoted [..] as a glob


def _pick(f: RunFacts, group: str, option: str) -> str | None:
    return None if f.choices.get(group) == option else f"{group}={option}"


def _text(value: Any) -> str:
    """A value as an override on the command line: [256,256], true, 0.001."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, float):
        text = f"{value:g}"
        return text if any(c in text for c in ".en") else text + ".0"  # 1.0 stays a float: 1.0, not 1
    return str(value)


def _scaled(value: Any, factor: float) -> float | None:
    """``value * factor`` to three significant digits (as shown), None for a value that is not a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return None
    return float(f"{value * factor:.3g}")


def _cure(words: str, *overrides: str | None, sep: str = " ") -> str | None:
    """``words (override ...)``, or None when no override applies to this run."""
    named = [o for o in overrides if o]
    return f"{words} ({sep.join(named)})" if named else None


def _listed(cures: list[str | None], fallback: str) -> str:
    cures = [c for c in cures if c]
    return ", ".join(cures) if cures else fallback


def _regularizer(f: RunFacts, option: str, key: str, value: Any) -> str | None:
    """``regularizer=<option>`` while no cure is in use (it adds exactly that one), else the key, which
    keeps the cures in use (a new regularizer option would replace them)."""
    return (not f.any_cure and _pick(f, "regularizer", option)) or _set(f, key, value)


def _widths(f: RunFacts, factor: float) -> list[str | None]:
    """Every width key of the model scaled by ``factor`` (layers of at least one unit; d_model a multiple of
    n_heads)."""
    out = []
    for key in WIDTHS:
        value = f.config.get(f"model.{key}")
        if isinstance(value, list):
            new = [int(w * factor) for w in value]
            out.append(_set(f, f"model.{key}", new) if value and min(new) >= 1 else None)
        elif isinstance(value, int) and int(value * factor) >= 1:
            new = int(value * factor)
            heads = f.config.get("model.n_heads")
            ok = key != "d_model" or not isinstance(heads, int) or new % heads == 0
            out.append(_set(f, f"model.{key}", new) if ok else None)
    return out


def _hidden_layer(f: RunFacts) -> str | None:
    """A linear model's cure: an MLP with hidden layers (the default one solves XOR)."""
    if "model.hidden" in f.config:
        return _cure("a hidden layer", _set(f, "model.hidden", [8]))
    return _cure("a hidden layer", _pick(f, "model", "mlp"))


def _longer(f: RunFacts, status: str) -> str | None:
    """More epochs; for a run early stopping ended, a longer patience instead (more epochs would not run)."""
    if status == "early_stopped":
        key = "regularizer.early_stopping.patience"
        return _cure("a longer early-stopping patience", _set(f, key, _int(_scaled(f.config.get(key), 2))))
    return _cure("more epochs", _set(f, "trainer.epochs", _int(_scaled(f.config.get("trainer.epochs"), 2))))


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _higher_lr(f: RunFacts) -> str | None:
    return _cure("a higher learning rate", _set(f, "optimizer.lr", _scaled(f.config.get("optimizer.lr"), 3)))


# --- the rules ------------------------------------------------------------------------------------------


def _fell(before: float, after: float) -> float:
    """How much a loss fell from ``before`` to ``after``, relative to ``before``."""
    return (before - after) / max(abs(before), 1e-12)


def _val_minimum(val: list[float]) -> tuple[int, float]:
    """The epoch index of the val/loss minimum, and how far the last val/loss rose above it (relative)."""
    i_min = min(range(len(val)), key=val.__getitem__)
    return i_min, (val[-1] - val[i_min]) / max(abs(val[i_min]), 1e-12)


def _diverged(train: list[float], val: list[float], epochs: list, status: str, f: RunFacts) -> Diagnosis | None:
    bad = next((i for i, (t, v) in enumerate(zip(train, val, strict=True)) if not (math.isfinite(t) and math.isfinite(v))), None)
    if status != "diverged" and bad is None:
        return None
    # diverged with finite curves: an optimizer update that overflowed float32 was refused (nnexp/loop.py)
    why = f"the loss became NaN/Inf in epoch {epochs[bad]}" if bad is not None else \
        f"training diverged in epoch {epochs[-1]}"
    lr = _scaled(f.config.get("optimizer.lr"), 0.1)
    cures = [_cure("a lower learning rate", _set(f, "optimizer.lr", lr and min(lr, 0.01))),
             _cure("gradient clipping", _set(f, "trainer.grad_clip", 1.0) if f.config.get("trainer.grad_clip") is None
                   else None),
             _cure("float32 instead of float16", _set(f, "trainer.precision", "32")
                   if f.config.get("trainer.precision") == "16" else None)]
    return Diagnosis("diverged", why, _listed(cures, "a lower learning rate"))


def _cannot_separate(acc: list[float | None], epochs: list, f: RunFacts) -> Diagnosis | None:
    """A linear model that never fits its own training data: its one straight boundary cannot split these
    classes (XOR's four clusters: at most three right). More epochs do not help; a hidden layer does."""
    if not f.linear or len(acc) < 2 or None in acc or max(acc) >= UNDERFIT_ACC:
        return None
    q = max(1, len(acc) // 4)
    if max(acc[-q:]) > max(acc[:-q]) + STILL_LEARNING:  # still learning: underfit, let it train
        return None
    model = f"model={f.choices['model']}" if f.choices.get("model") else "the model"
    return Diagnosis("cannot separate",
                     f"{model} is linear, one straight boundary between the classes, and its train/acc stayed at "
                     f"{max(acc):.2f} or below for {epochs[-1]} epochs",
                     "the classes are not linearly separable (XOR is not): more epochs will not help, "
                     + (_hidden_layer(f) or "a hidden layer") + " will")


def _overfit(train: list[float], val: list[float], epochs: list, f: RunFacts) -> Diagnosis | None:
    i_min, rise = _val_minimum(val)
    train_fall = _fell(train[i_min], train[-1])
    gap = val[-1] - train[-1]
    fitting = rise > OVERFIT_RISE and train_fall > OVERFIT_TRAIN_FALL
    apart = rise > CLEAR_RISE and gap > WIDE_GAP * abs(val[-1])
    if i_min == len(val) - 1 or not (fitting or apart):
        return None
    reason = f"val/loss minimum {val[i_min]:.3g} at epoch {epochs[i_min]}, {rise:+.0%} by epoch {epochs[-1]} "
    reason += (f"while train/loss fell {train_fall:.0%}" if fitting else
               f"while train/loss stayed far below it (gap val - train = {gap:.3g})")
    text = _listed(_overfit_cures(f), "more training data")
    if f.early_stopping:
        kept = "kept the weights of" if f.config.get("regularizer.early_stopping.restore_best") else "stopped after"
        return Diagnosis("overfit", reason, f"early stopping {kept} epoch {epochs[i_min]}; to generalize better "
                                            f"try {text}")
    return Diagnosis("overfit", reason, "try " + text)


def _overfit_cures(f: RunFacts) -> list[str | None]:
    weight_decay, l1 = f.number("regularizer.weight_decay"), f.number("regularizer.l1")
    l2_works = "optimizer.weight_decay" in f.config  # the optimizer applies regularizer.weight_decay
    if weight_decay > 0:
        penalty = _cure("a stronger weight penalty", _set(f, "regularizer.weight_decay", _scaled(weight_decay, 10))
                        if weight_decay < 0.1 else None)
    elif l1 > 0:
        penalty = _cure("a stronger L1 penalty", _set(f, "regularizer.l1", _scaled(l1, 10)) if l1 < 0.01 else None)
    else:
        penalty = _cure("a weight penalty",
                        _regularizer(f, "l2", "regularizer.weight_decay", 0.001) if l2_works else None,
                        _regularizer(f, "l1", "regularizer.l1", 0.0001), sep=" or ")
    dropout = (_cure("more dropout" if f.dropout else "dropout", _regularizer(f, "dropout", "regularizer.dropout", 0.5))
               if "model.dropout" in f.config and f.dropout < 0.5 else None)
    more_data = [_set(f, "dataset.train_fraction", min(1.0, 2 * f.config["dataset.train_fraction"]))
                 if f.number("dataset.train_fraction") > 0 else None,
                 _set(f, "dataset.n_samples", _int(_scaled(f.config.get("dataset.n_samples"), 2)))]
    return [None if f.early_stopping else
            _cure("early stopping", _regularizer(f, "early_stopping", "regularizer.early_stopping.enabled", True)),
            penalty, dropout,
            _cure("a smaller model", *_widths(f, 0.5)),
            _cure("more training data", *more_data)]


def _plateau(train: list[float], solved: bool, f: RunFacts) -> Diagnosis | None:
    if solved or len(train) < 3 or _fell(train[0], min(train)) >= PLATEAU_CHANGE:
        return None
    lr = f.config.get("optimizer.lr")
    activation = f.config.get("model.activation")
    cures = [_cure("a different learning rate", _set(f, "optimizer.lr", _scaled(lr, 10)),
                   _set(f, "optimizer.lr", _scaled(lr, 0.1)), sep=" or "),
             None if f.choices.get("optimizer") in ("adam", "adamw") else _cure("Adam", _pick(f, "optimizer", "adam")),
             _cure(f"relu instead of a saturating {activation}", _set(f, "model.activation", "relu"))
             if activation in ("sigmoid", "tanh") else None,
             _cure("the shortcuts back", _set(f, "model.skip", True))]
    return Diagnosis("plateau", f"train/loss stayed within {PLATEAU_CHANGE:.0%} of {train[0]:.3g} for {len(train)} epochs",
                     "the optimizer is stuck: try " + _listed(cures, "a different learning rate"))


def _underfit_accuracy(train_acc: float | None, epochs: list, status: str, f: RunFacts) -> Diagnosis | None:
    if train_acc is None or train_acc >= UNDERFIT_ACC:
        return None
    weight_decay = f.number("regularizer.weight_decay")
    capacity = _hidden_layer(f) if f.linear else _cure("more capacity", *_widths(f, 2))
    weaker = _cure("less regularization", _set(f, "regularizer.weight_decay", _scaled(weight_decay, 0.1)),
                   _set(f, "regularizer.dropout", 0.0) if f.dropout > 0 else None)
    return Diagnosis("underfit", f"train/acc is only {train_acc:.2f} at epoch {epochs[-1]}",
                     _listed([capacity, _longer(f, status), _higher_lr(f), weaker], "more capacity or more epochs"))


def _still_falling(train: list[float], val: list[float], solved: bool, status: str, f: RunFacts) -> Diagnosis | None:
    """Underfit too: both losses were still falling over the last quarter of the run."""
    q = max(1, len(train) // 4)
    if (solved or len(train) < 4 or _fell(train[-1 - q], train[-1]) <= STILL_FALLING
            or _fell(val[-1 - q], val[-1]) <= STILL_FALLING):
        return None
    return Diagnosis("underfit",
                     f"train/loss and val/loss both still fell over the last {q} epochs "
                     f"(val/loss {val[-1 - q]:.3g} -> {val[-1]:.3g})",
                     "train longer: " + _listed([_longer(f, status), _higher_lr(f)], "more epochs"))


def _good_fit(train: list[float], val: list[float], epochs: list) -> Diagnosis:
    i_min, rise = _val_minimum(val)
    return Diagnosis("good fit",
                     f"val/loss ends at {val[-1]:.3g}, {rise:+.0%} from its minimum {val[i_min]:.3g} at epoch "
                     f"{epochs[i_min]}; gap val - train = {val[-1] - train[-1]:.3g}",
                     "nothing to fix; compare seeds (trainer.seed=0,1,2 with -m) before trusting small differences")
