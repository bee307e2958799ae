"""Model families, one per file.

Every constructor takes two keyword arguments that nnexp fills in at run time
from the dataset, ``input_shape`` (one sample, without the batch dimension) and
``num_outputs``, plus its own typed options from ``conf/model/<name>.yaml``.
Adding a model is one new file here and one YAML naming it in ``_target_``.
"""

from __future__ import annotations

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is not one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
