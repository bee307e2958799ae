"""Model families, one per file.

Every constructor takes two keyword arguments that nnexp fills in at run time
from the dataset, ``input_shape`` (one sample, without the batch dimension) and
``num_outputs``, plus its own typed options from ``conf/model/<name>.yaml``.
Adding a model is one new file here and one YAML naming it in ``_target_``.

A constructor checks its own options first, before it builds a layer, with its
function in nnexp/options/models.py (free of torch, so ``nnexp train`` runs it
before torch is imported): a bad value raises :class:`~nnexp.errors.OptionError`
naming the argument, which nnexp shows as ``model.<key>=... is out of range;
allowed: ...``. A combination of options it cannot do is a ValueError. A new model
may also check its options itself; it is then checked when it is built.
"""

from __future__ import annotations

from torch import nn

from nnexp.options import check_choice
from nnexp.options import models as options

ACTIVATIONS: dict[str, type[nn.Module]] = {name: getattr(nn, cls) for name, cls in options.ACTIVATIONS.items()}


def activation(name: str) -> nn.Module:
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def is_linear(model: nn.Module) -> bool:
    """One affine map from inputs to outputs (the perceptron, the sigmoid unit, an MLP without hidden layers):
    its only weights are one ``nn.Linear``, so between two classes it draws one straight boundary."""
    weighted = [m for m in model.modules() if next(m.parameters(recurse=False), None) is not None]
    return len(weighted) == 1 and isinstance(weighted[0], nn.Linear)
