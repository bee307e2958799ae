"""Datasets as tensors: every loader returns a :class:`Data` with fixed train/val(/test) splits.

The whole dataset is moved to the training device once; the loop batches it by
slicing shuffled indices, so there is no per-sample DataLoader in the way.

Every loader checks its own arguments first, before it reads a file or
generates anything, with the checks at the end of this module (models use them
too): a bad value raises :class:`~nnexp.errors.OptionError` naming the argument,
which nnexp shows as ``dataset.<key>=... is out of range; allowed: ...``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from nnexp.errors import OptionError


@dataclass
class Split:
    x: torch.Tensor  # (N, *input_shape)
    y: torch.Tensor  # (N,) class indices, or (N, D) regression targets

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Data:
    name: str
    task: str  # "classification" | "regression"
    input_shape: tuple[int, ...]
    train: Split
    val: Split
    test: Split | None = None
    num_classes: int | None = None  # classification only
    target_dim: int | None = None  # regression only
    vocab_size: int | None = None  # inputs are token ids (N, T) int64 from range(vocab_size)
    per_step: bool = False  # one target per time step: y is (N, T)
    next_token: bool = False  # per-step targets are the inputs shifted by one: models must not look ahead
    # regression only: a prediction within this distance of its target (every dimension) counts as
    # right, which gives regression an accuracy (train/acc, val/acc); None: no accuracy
    tolerance: float | None = None
    # rl datasets (nnexp/data/rl.py): how the trained model does in its environment. Called with the
    # model every ``eval_every`` epochs (0: only at the end) and at the end of the run; returns named
    # numbers, logged as eval/<name> in TensorBoard and under "eval" in summary.json
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None
    eval_every: int = 0

    def to(self, device: torch.device | str) -> Data:
        return replace(
            self,
            train=self.train.to(device),
            val=self.val.to(device),
            test=None if self.test is None else self.test.to(device),
        )


def split_arrays(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    val_fraction: float,
    test_fraction: float = 0.0,
    train_fraction: float = 1.0,
    seed: int = 0,
    num_classes: int | None = None,
    vocab_size: int | None = None,
    per_step: bool = False,
    next_token: bool = False,
    tolerance: float | None = None,
) -> Data:
    """Shuffle once with ``seed`` and cut into test | val | train; keep ``train_fraction`` of train.

    The same seed always gives the same split, whatever the trainer's seed is.
    """
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    n_val = max(1, int(round(val_fraction * n)))
    test_idx, val_idx, train_idx = np.split(order, [n_test, n_test + n_val])
    n_train = max(1, int(round(train_fraction * len(train_idx))))
    train_idx = train_idx[:n_train]
    if len(train_idx) == 0:
        from nnexp.errors import ConfigError

        raise ConfigError(f"dataset {name}: no training samples left after the val/test split")

    classification = num_classes is not None

    def part(idx: np.ndarray) -> Split:
        xt = torch.as_tensor(x[idx], dtype=torch.int64 if vocab_size else torch.float32)
        yt = torch.as_tensor(y[idx], dtype=torch.int64 if classification else torch.float32)
        return Split(xt, yt)

    return Data(
        name=name,
        task="classification" if classification else "regression",
        input_shape=tuple(x.shape[1:]),
        train=part(train_idx),
        val=part(val_idx),
        test=part(test_idx) if n_test else None,
        num_classes=num_classes,
        target_dim=None if classification else (1 if y.ndim == 1 else int(y.shape[-1])),
        vocab_size=vocab_size,
        per_step=per_step,
        next_token=next_token,
        tolerance=None if classification else tolerance,
    )


# ---------------------------------------------------------------------------
# Option checks, shared by the loaders here and the models (nnexp/models). Each raises
# OptionError(key, value, allowed) with the allowed range in words.


def finite(value: Any) -> bool:
    """A real number, not a bool, nan or inf."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def int_at_least(value: Any, least: int) -> bool:
    """An integer (not a bool) >= ``least``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def check(key: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise OptionError(key, value, allowed)


def check_int(key: str, value: Any, least: int, note: str = "", *, null: bool = False) -> None:
    """An integer >= ``least`` (or None with ``null``); ``note`` says what it counts."""
    if null and value is None:
        return
    if not int_at_least(value, least):
        allowed = f"{'null or ' if null else ''}an integer >= {least}{f' ({note})' if note else ''}"
        raise OptionError(key, value, allowed)


def check_choice(key: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if not (isinstance(value, str) and value in choices):
        raise OptionError(key, value, "one of " + ", ".join(choices))


def check_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise OptionError(key, value, "true or false")


def check_path(key: str, value: Any, allowed: str) -> None:
    """A file or folder name, not empty; whether it exists is for the loader to say."""
    if not (isinstance(value, (str, os.PathLike)) and str(value).strip() != ""):
        raise OptionError(key, value, allowed)


def check_fractions(val_fraction: Any, test_fraction: Any = 0.0, train_fraction: Any = 1.0) -> None:
    """The split of a loader: each fraction in range, and something left to train on."""
    val, test, train = val_fraction, test_fraction, train_fraction
    check("val_fraction", val, finite(val) and 0 < val < 1, "a number in (0, 1)")
    check("test_fraction", test, finite(test) and 0 <= test < 1, "a number in [0, 1)")
    check("train_fraction", train, finite(train) and 0 < train <= 1, "a number in (0, 1]")
    if val + test >= 1:
        raise ValueError(f"val_fraction + test_fraction = {val + test:g} leaves no training data; "
                         "allowed: a sum < 1")
