"""The LSTM cell from its equations, in two forms, and a multi-layer LSTM with torch's calling convention.

The seed's form (Jozefowicz et al. 2015), as written there, gate order (i, j, f, o):

    i_t = tanh(W_xi x_t + W_hi h_{t-1} + b_i)     candidate
    j_t = sigm(W_xj x_t + W_hj h_{t-1} + b_j)     input gate
    f_t = sigm(W_xf x_t + W_hf h_{t-1} + b_f)     forget gate
    o_t = tanh(W_xo x_t + W_ho h_{t-1} + b_o)     output "gate" (tanh, as written in the seed and the paper)
    c_t = c_{t-1} o f_t + i_t o j_t
    h_t = tanh(c_t) o o_t

The standard form (Hochreiter & Schmidhuber; torch.nn.LSTM), gate order (i, f, g, o):

    i, f, o = sigm(.), g = tanh(.),   c_t = f o c_{t-1} + i o g,   h_t = o o tanh(c_t)

The four gates' weights are stacked: W_x (4H, F), W_h (4H, H), one bias b (4H,).
torch keeps two biases (b_ih + b_hh); ``load_torch_lstm`` adds them. Gradients
come from autograd on these equations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FORMS = ("standard", "seed")


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, w_x: Tensor, w_h: Tensor, b: Tensor,
              form: str = "standard") -> tuple[Tensor, Tensor]:
    """One step: x (B, F), h (B, H), c (B, H), w_x (4H, F), w_h (4H, H), b (4H,) -> (h_t, c_t)."""
    a = x @ w_x.T + h @ w_h.T + b  # (B, 4H): the four gates' pre-activations
    a1, a2, a3, a4 = a.chunk(4, dim=1)  # (B, H) each
    if form == "standard":
        i, f, g, o = torch.sigmoid(a1), torch.sigmoid(a2), torch.tanh(a3), torch.sigmoid(a4)
        c = f * c + i * g
        return o * torch.tanh(c), c
    if form == "seed":
        i, j, f, o = torch.tanh(a1), torch.sigmoid(a2), torch.sigmoid(a3), torch.tanh(a4)
        c = c * f + i * j
        return torch.tanh(c) * o, c
    raise ValueError(f"form={form!r} is not one of: {', '.join(FORMS)}")


class ScratchLSTM(nn.Module):
    """Same call as ``torch.nn.LSTM(batch_first=True)``: x (B, T, F) -> out (B, T, H*dirs), (h_n, c_n).

    h_n and c_n are (layers*dirs, B, H), row ``layer*dirs + direction`` as in torch.
    ``dropout`` acts on the outputs of every layer but the last, in training mode.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, form: str = "standard") -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"form={form!r} is not one of: {', '.join(FORMS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.dirs, self.dropout, self.form = 2 if bidirectional else 1, dropout, form
        bound = 1.0 / math.sqrt(hidden_size)  # torch's init: U(-1/sqrt(H), 1/sqrt(H))
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * self.dirs
            for d in range(self.dirs):
                sfx = self._suffix(layer, d)
                for name, shape in (("weight_x", (4 * hidden_size, width)),
                                    ("weight_h", (4 * hidden_size, hidden_size)), ("bias", (4 * hidden_size,))):
                    self.register_parameter(f"{name}{sfx}", nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor, Tensor]:
        sfx = self._suffix(layer, direction)
        return getattr(self, f"weight_x{sfx}"), getattr(self, f"weight_h{sfx}"), getattr(self, f"bias{sfx}")

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        batch, steps, _ = x.shape
        if state is None:
            zeros = x.new_zeros(self.num_layers * self.dirs, batch, self.hidden_size)
            state = (zeros, zeros)
        h0, c0 = state  # (layers*dirs, B, H) each
        h_n, c_n = [], []
        layer_in = x  # (B, T, F), then (B, T, H*dirs)
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.dirs):
                h, c = h0[layer * self.dirs + d], c0[layer * self.dirs + d]  # (B, H)
                ys: list[Tensor] = [None] * steps  # type: ignore[list-item]
                for t in (reversed(range(steps)) if d else range(steps)):  # the reverse direction reads back to front
                    h, c = lstm_cell(layer_in[:, t], h, c, *self.weights(layer, d), form=self.form)
                    ys[t] = h
                outs.append(torch.stack(ys, dim=1))  # (B, T, H)
                h_n.append(h)
                c_n.append(c)
            layer_in = torch.cat(outs, dim=-1)  # (B, T, H*dirs)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        return layer_in, (torch.stack(h_n), torch.stack(c_n))

    @classmethod
    def from_torch(cls, lstm: nn.LSTM) -> ScratchLSTM:
        """A standard-form ScratchLSTM computing the same function as ``lstm``."""
        ref = lstm.weight_ih_l0
        ours = cls(lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bidirectional, lstm.dropout)
        return load_torch_lstm(ours.to(dtype=ref.dtype, device=ref.device), lstm)


def load_torch_lstm(ours: ScratchLSTM, lstm: nn.LSTM) -> ScratchLSTM:
    """Copy torch's weights (gate order i, f, g, o, the same as the standard form) into ``ours``."""
    if ours.form != "standard":
        raise ValueError("torch.nn.LSTM is the standard form; build the ScratchLSTM with form='standard'")
    if getattr(lstm, "proj_size", 0):
        raise ValueError("an LSTM with proj_size > 0 has no counterpart here")
    same = (ours.input_size, ours.hidden_size, ours.num_layers, ours.dirs) == (
        lstm.input_size, lstm.hidden_size, lstm.num_layers, 2 if lstm.bidirectional else 1)
    if not same:
        raise ValueError("the ScratchLSTM and the torch.nn.LSTM differ in size, layers or directions")
    with torch.no_grad():
        for layer in range(ours.num_layers):
            for d in range(ours.dirs):
                sfx = ours._suffix(layer, d)
                w_x, w_h, b = ours.weights(layer, d)
                w_x.copy_(getattr(lstm, f"weight_ih{sfx}"))
                w_h.copy_(getattr(lstm, f"weight_hh{sfx}"))
                if lstm.bias:  # torch adds two biases; one is enough
                    b.copy_(getattr(lstm, f"bias_ih{sfx}") + getattr(lstm, f"bias_hh{sfx}"))
                else:
                    b.zero_()
    return ours
