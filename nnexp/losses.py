"""Loss functions chosen from the dataset's task, and what accuracy means for each.

The course's loss set: mse, nll, bce (plus cross-entropy, which is nll on a
log-softmax). ``auto`` picks cross_entropy for classes, bce for exactly two
classes, mse for regression.
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


def _argmax_correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.argmax(dim=-1) == y).sum()


def _binary_correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out.squeeze(-1) > 0).long() == y).sum()


def _bce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.to(out.dtype))


def _nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(F.log_softmax(out, dim=-1), y)


def make_objective(name: str, task: str, num_classes: int | None, target_dim: int | None) -> Objective:
    """Resolve ``loss=<name>`` against the dataset; a mismatch is a config error (exit 2)."""
    if task == "regression":
        if name not in ("auto", "mse"):
            raise ConfigError(f"loss={name} needs class labels, but the dataset is regression; allowed: auto, mse")
        dim = target_dim or 1

        def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(out, y.reshape(out.shape))

        return Objective("mse", dim, mse, None)

    assert num_classes is not None
    if name == "auto":
        name = "bce" if num_classes == 2 else "cross_entropy"
    if name == "cross_entropy":
        return Objective(name, num_classes, F.cross_entropy, _argmax_correct)
    if name == "nll":
        return Objective(name, num_classes, _nll, _argmax_correct)
    if name == "bce":
        if num_classes != 2:
            raise ConfigError(
                f"loss=bce needs exactly 2 classes, the dataset has {num_classes}; "
                "allowed: auto, cross_entropy, nll, mse"
            )
        return Objective(name, 1, _bce, _binary_correct)
    if name == "mse":

        def mse_onehot(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(out, F.one_hot(y, num_classes).to(out.dtype))

        return Objective(name, num_classes, mse_onehot, _argmax_correct)
    raise ConfigError(f"loss={name} is unknown; allowed: auto, cross_entropy, nll, bce, mse")
