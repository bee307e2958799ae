"""Model families, one per file.

Every constructor takes two keyword arguments that nnexp fills in at run time
from the dataset, ``input_shape`` (one sample, without the batch dimension) and
``num_outputs``, plus its own typed options from ``conf/model/<name>.yaml``.
Adding a model is one new file here and one YAML naming it in ``_target_``.

A constructor checks its own options first, before it builds a layer: a bad
value raises :class:`~nnexp.errors.OptionError` naming the argument (helpers:
``check_*`` in nnexp/options.py), which nnexp shows as ``model.<key>=... is out of
range; allowed: ...``. A combination of options it cannot do is a ValueError.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from nnexp.options import check, check_choice, finite

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def activation(name: str) -> nn.Module:
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def check_dropout(dropout: Any) -> None:
    check("dropout", dropout, finite(dropout) and 0 <= dropout < 1, "a number in [0, 1)")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def is_linear(model: nn.Module) -> bool:
    """One affine map from inputs to outputs (the perceptron, the sigmoid unit, an MLP without hidden layers):
    its only weights are one ``nn.Linear``, so between two classes it draws one straight boundary."""
    weighted = [m for m in model.modules() if next(m.parameters(recurse=False), None) is not None]
    return len(weighted) == 1 and isinstance(weighted[0], nn.Linear)
