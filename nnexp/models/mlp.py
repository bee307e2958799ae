"""Multi-layer perceptron: z_{i+1} = f_i(W_i z_i + b_i), h(x) = z_k (course notation).

``residual=True`` adds an identity skip around every hidden layer whose input
and output widths match, z_{i+1} = z_i + f_i(W_i z_i + b_i) (He et al.; no
projection, so layers that change width stay plain). ``impl="scratch"`` runs
forward and backward through nnexp.scratch.backprop (the seed's Backpropagation)
instead of autograd; it has the same parameters, so the same seed gives the
same network.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from nnexp.models import activation as make_activation
from nnexp.options import models as options

# Weight init of the linear layers (options.INITS; biases start at 0 except under "torch"):
#   torch: PyTorch's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance 1/(3 fan_in): each ReLU
#          layer shrinks the signal's variance about 6x, so deep plain nets start with vanished gradients
#   he:     N(0, 2/fan_in) (He et al. 2015): keeps the variance through ReLU layers
#   xavier: N(0, 2/(fan_in + fan_out)) (Glorot & Bengio 2010): made for tanh/sigmoid-like layers


class MLP(nn.Module):
    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_outputs: int,
        hidden: list[int] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        residual: bool = False,
        impl: str = "torch",
        init: str = "torch",
    ) -> None:
        super().__init__()
        options.mlp(hidden=hidden, activation=activation, dropout=dropout, residual=residual, impl=impl, init=init)
        self.activation, self.impl = activation, impl
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        width = math.prod(input_shape)
        self.skips: list[bool] = []  # per hidden layer: does an identity skip go around it?
        for i, h in enumerate(hidden, start=1):
            layers[f"fc{i}"] = nn.Linear(width, int(h))
            layers[f"act{i}"] = make_activation(activation)
            if dropout > 0:
                layers[f"drop{i}"] = nn.Dropout(dropout)
            self.skips.append(residual and width == int(h))
            width = int(h)
        layers["out"] = nn.Linear(width, num_outputs)
        self.net = nn.Sequential(layers)
        if init != "torch":
            for layer in layers.values():
                if isinstance(layer, nn.Linear):
                    if init == "he":
                        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                    else:
                        nn.init.xavier_normal_(layer.weight)
                    nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, *input_shape) -> (B, num_outputs)
        if self.impl == "scratch":
            return self._scratch_forward(x)
        if not any(self.skips):
            return self.net(x)
        z = self.net.flatten(x)  # (B, d)
        for i, skip in enumerate(self.skips, start=1):
            h = getattr(self.net, f"act{i}")(getattr(self.net, f"fc{i}")(z))
            if hasattr(self.net, f"drop{i}"):
                h = getattr(self.net, f"drop{i}")(h)
            z = z + h if skip else h  # (B, width)
        return self.net.out(z)

    def _scratch_forward(self, x: torch.Tensor) -> torch.Tensor:
        from nnexp.scratch.backprop import ScratchMLPFunction

        linears = [getattr(self.net, f"fc{i}") for i in range(1, len(self.skips) + 1)] + [self.net.out]
        activations = (self.activation,) * len(self.skips) + ("identity",)  # the output layer gives logits
        params = [t for lin in linears for t in (lin.weight, lin.bias)]
        return ScratchMLPFunction.apply(self.net.flatten(x), activations, *params)
