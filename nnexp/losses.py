"""Loss functions chosen from the dataset's task, and what accuracy means for each.

The course's loss set: mse, nll, bce (plus cross-entropy, which is nll on a
log-softmax). ``auto`` picks cross_entropy for classes, bce for exactly two
classes, mse for regression, unless the model names its own (the perceptron's
criterion). Per-step targets (sequence labelling, next-token prediction) are
scored per time step: losses average over tokens and accuracy counts tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nnexp.errors import ConfigError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Objective:
    name: str
    num_outputs: int
    loss: LossFn  # mean loss over the batch
    correct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None  # count of right answers
    per_step: bool = False

    def units(self, y: torch.Tensor) -> int:
        """How many answers ``y`` holds: samples, or tokens for per-step classification."""
        return y.numel() if self.per_step and self.correct is not None else y.shape[0]


def _per_step(fn: Callable, num_outputs: int) -> Callable:
    """Score (B, T, C) outputs against (B, T) targets as B*T independent predictions."""

    def flat(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return fn(out.reshape(-1, num_outputs), y.reshape(-1))

    return flat


def predicted_class(out: torch.Tensor) -> torch.Tensor:
    """(..., C) class scores -> (...) class indices; a single output (bce, perceptron) is the logit of class 1."""
    if out.shape[-1] == 1:
        return (out[..., 0] > 0).long()
    return out.argmax(dim=-1)


def _correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (predicted_class(out) == y).sum()


def _bce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.to(out.dtype))


def _nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(F.log_softmax(out, dim=-1), y)


def _perceptron(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Rosenblatt's criterion: its gradient step is the perceptron rule w <- w + lr (y - y_hat) x.

    With s = w.x + b and y_hat = step(s) held fixed, d/dw of -(y - y_hat) s is
    -(y - y_hat) x, so one SGD step on a single sample is exactly the classic rule.
    """
    s = out.squeeze(-1)
    y_hat = (s > 0).to(s.dtype).detach()
    return -((y.to(s.dtype) - y_hat) * s).mean()


def make_objective(name: str, task: str, num_classes: int | None, target_dim: int | None,
                   per_step: bool = False, model_default: str | None = None,
                   tolerance: float | None = None) -> Objective:
    """Resolve ``loss=<name>`` against the dataset (and the model's own default for ``auto``).

    A loss that does not fit the dataset is a config error (exit 2). Regression
    has an accuracy only with a ``tolerance``: the share of answers within it.
    """
    from_model = name == "auto" and bool(model_default)
    if from_model:
        name = model_default
    if task == "regression":
        if name not in ("auto", "mse"):
            raise ConfigError(f"loss={name} needs class labels, but the dataset is regression; allowed: auto, mse")
        dim = target_dim or 1

        def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(out, y.reshape(out.shape))

        within = None
        if tolerance is not None:
            def within(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return ((out - y.reshape(out.shape)).abs() < tolerance).all(dim=-1).sum()

        return Objective("mse", dim, mse, within, per_step)

    assert num_classes is not None
    if name == "auto":
        name = "bce" if num_classes == 2 and not per_step else "cross_entropy"
    if name in ("bce", "perceptron") and (num_classes != 2 or per_step):
        if from_model:
            raise ConfigError(f"this model is a single unit trained with loss={name}: it needs a two-class "
                              f"dataset (xor, moons, circles), this one has {num_classes} classes")
        raise ConfigError(
            f"loss={name} needs exactly 2 classes and one label per sample, the dataset has {num_classes} "
            f"classes{' per time step' if per_step else ''}; allowed: auto, cross_entropy, nll, mse"
        )
    if name == "cross_entropy":
        fn, correct, outputs = F.cross_entropy, _correct, num_classes
    elif name == "nll":
        fn, correct, outputs = _nll, _correct, num_classes
    elif name == "bce":
        fn, correct, outputs = _bce, _correct, 1
    elif name == "perceptron":
        fn, correct, outputs = _perceptron, _correct, 1
    elif name == "mse":

        def fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(out, F.one_hot(y, num_classes).to(out.dtype))

        correct, outputs = _correct, num_classes
    else:
        raise ConfigError(f"loss={name} is unknown; allowed: auto, cross_entropy, nll, bce, mse, perceptron")
    if per_step:
        fn = _per_step(fn, outputs)
    return Objective(name, outputs, fn, correct, per_step)
