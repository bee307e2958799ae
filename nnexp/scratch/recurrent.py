"""What the from-scratch recurrences (nnexp/scratch/lstm.py, nnexp/scratch/rnn.py) share: stacked layers and
directions with torch's ``batch_first`` calling convention and parameter layout, unrolled one step at a time.

A subclass says how many gate blocks its weights stack (``gates``: 4 for the LSTM, 1 for the plain RNN), how
many state tensors a step carries (``states``: (h, c) or h) and what one step computes (``step``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class StackedRecurrence(nn.Module):
    gates = 1
    states = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.dirs, self.dropout = 2 if bidirectional else 1, dropout
        bound, rows = 1.0 / math.sqrt(hidden_size), self.gates * hidden_size  # torch's init: U(-1/sqrt(H), 1/sqrt(H))
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * self.dirs
            for d in range(self.dirs):
                sfx = self._suffix(layer, d)
                for name, shape in (("weight_x", (rows, width)), ("weight_h", (rows, hidden_size)), ("bias", (rows,))):
                    self.register_parameter(f"{name}{sfx}", nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor, Tensor]:
        sfx = self._suffix(layer, direction)
        return getattr(self, f"weight_x{sfx}"), getattr(self, f"weight_h{sfx}"), getattr(self, f"bias{sfx}")

    def step(self, x: Tensor, state: tuple[Tensor, ...], w_x: Tensor, w_h: Tensor, b: Tensor) -> tuple[Tensor, ...]:
        """One time step: x (B, F), the state tensors (B, H) each -> the new state, h first."""
        raise NotImplementedError

    def unroll(self, x: Tensor, initial: tuple[Tensor, ...] | None) -> tuple[Tensor, list[Tensor]]:
        """x (B, T, F) -> the last layer's outputs (B, T, H*dirs) and the final state tensors, each
        (layers*dirs, B, H) with row ``layer*dirs + direction`` as in torch."""
        batch, steps, _ = x.shape
        if initial is None:
            zeros = x.new_zeros(self.num_layers * self.dirs, batch, self.hidden_size)
            initial = (zeros,) * self.states
        finals: list[list[Tensor]] = [[] for _ in range(self.states)]
        layer_in = x  # (B, T, F), then (B, T, H*dirs)
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.dirs):
                state = tuple(s[layer * self.dirs + d] for s in initial)  # (B, H) each
                ys: list[Tensor] = [None] * steps  # type: ignore[list-item]
                for t in (reversed(range(steps)) if d else range(steps)):  # the reverse direction reads back to front
                    state = self.step(layer_in[:, t], state, *self.weights(layer, d))
                    ys[t] = state[0]
                outs.append(torch.stack(ys, dim=1))  # (B, T, H)
                for kept, s in zip(finals, state, strict=True):
                    kept.append(s)
            layer_in = torch.cat(outs, dim=-1)  # (B, T, H*dirs)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        return layer_in, [torch.stack(kept) for kept in finals]

    def same_shape(self, torch_module: nn.RNNBase) -> bool:
        return (self.input_size, self.hidden_size, self.num_layers, self.dirs) == (
            torch_module.input_size, torch_module.hidden_size, torch_module.num_layers,
            2 if torch_module.bidirectional else 1)

    def copy_torch_weights(self, torch_module: nn.RNNBase) -> None:
        """torch's weight_ih, weight_hh and the sum of its two biases, layer by layer and direction."""
        with torch.no_grad():
            for layer in range(self.num_layers):
                for d in range(self.dirs):
                    sfx = self._suffix(layer, d)
                    w_x, w_h, b = self.weights(layer, d)
                    w_x.copy_(getattr(torch_module, f"weight_ih{sfx}"))
                    w_h.copy_(getattr(torch_module, f"weight_hh{sfx}"))
                    if torch_module.bias:  # torch adds two biases; one is enough
                        b.copy_(getattr(torch_module, f"bias_ih{sfx}") + getattr(torch_module, f"bias_hh{sfx}"))
                    else:
                        b.zero_()
