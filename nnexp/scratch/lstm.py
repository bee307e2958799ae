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

import torch
from torch import Tensor, nn

from nnexp.scratch.recurrent import StackedRecurrence

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


class ScratchLSTM(StackedRecurrence):
    """Same call as ``torch.nn.LSTM(batch_first=True)``: x (B, T, F) -> out (B, T, H*dirs), (h_n, c_n).

    h_n and c_n are (layers*dirs, B, H), row ``layer*dirs + direction`` as in torch.
    ``dropout`` acts on the outputs of every layer but the last, in training mode.
    """
    gates, states = 4, 2

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, form: str = "standard") -> None:
        if form not in FORMS:
            raise ValueError(f"form={form!r} is not one of: {', '.join(FORMS)}")
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.form = form

    def step(self, x: Tensor, state: tuple[Tensor, ...], w_x: Tensor, w_h: Tensor, b: Tensor) -> tuple[Tensor, ...]:
        return lstm_cell(x, *state, w_x, w_h, b, form=self.form)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        out, (h_n, c_n) = self.unroll(x, state)
        return out, (h_n, c_n)

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
    if not ours.same_shape(lstm):
        raise ValueError("the ScratchLSTM and the torch.nn.LSTM differ in size, layers or directions")
    ours.copy_torch_weights(lstm)
    return ours
