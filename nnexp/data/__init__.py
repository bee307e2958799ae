"""Datasets as tensors: every loader returns a :class:`Data` with fixed train/val(/test) splits.

The whole dataset is moved to the training device once; the loop batches it by
slicing shuffled indices, so there is no per-sample DataLoader in the way.

Every loader checks its own arguments first, before it reads a file or
generates anything, with its function in nnexp/options/data.py (free of torch, so
``nnexp train`` runs it before torch is imported): a bad value raises
:class:`~nnexp.errors.OptionError` naming the argument, which nnexp shows as
``dataset.<key>=... is out of range; allowed: ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch


@dataclass
class Split:
    x: torch.Tensor  # (N, *input_shape)
    y: torch.Tensor  # (N,) class indices, or (N, D) regression targets

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))

    def first(self, n: int) -> Split:
        """The first ``n`` samples (all when there are fewer), as their own tensors: the rest can be freed."""
        return self if n >= len(self) else Split(self.x[:n].clone(), self.y[:n].clone())


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


def limit(data: Data, *, batch_size: int, eval_batch_size: int, limit_batches: int = 0,
          overfit_batches: int = 0) -> Data:
    """``trainer.overfit_batches`` and ``trainer.limit_batches`` as smaller splits, so the loop runs as it is.

    overfit_batches=N: training keeps the first N batches' samples, and validation and test are those same
    samples (a model that memorizes them shows it in val/loss too). limit_batches=N: at most N batches of
    ``batch_size`` to train on and N of ``eval_batch_size`` to validate and test on. The splits were shuffled
    once when the data was built, so "the first" samples are a fixed random pick, the same every epoch.
    """
    if overfit_batches:
        train = data.train.first(overfit_batches * batch_size)
        data = replace(data, train=train, val=train, test=None if data.test is None else train)
    if limit_batches:
        data = replace(data, train=data.train.first(limit_batches * batch_size),
                       val=data.val.first(limit_batches * eval_batch_size),
                       test=None if data.test is None else data.test.first(limit_batches * eval_batch_size))
    return data


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

