"""The plain (Elman) recurrent cell from its equation, and a multi-layer RNN with torch's calling convention.

    h_t = tanh(W_x x_t + W_h h_{t-1} + b)

W_x (H, F), W_h (H, H), one bias b (H,). torch.nn.RNN keeps two biases (b_ih + b_hh);
``load_torch_rnn`` adds them. Gradients come from autograd on this equation; through time they are
products of W_h^T diag(1 - h_t^2), which is why they vanish over long distances.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nnexp.scratch.recurrent import StackedRecurrence


def rnn_cell(x: Tensor, h: Tensor, w_x: Tensor, w_h: Tensor, b: Tensor) -> Tensor:
    """One step: x (B, F), h (B, H), w_x (H, F), w_h (H, H), b (H,) -> h_t (B, H)."""
    return torch.tanh(x @ w_x.T + h @ w_h.T + b)


class ScratchRNN(StackedRecurrence):
    """Same call as ``torch.nn.RNN(batch_first=True)``: x (B, T, F) -> out (B, T, H*dirs), h_n.

    h_n is (layers*dirs, B, H), row ``layer*dirs + direction`` as in torch.
    ``dropout`` acts on the outputs of every layer but the last, in training mode.
    """
    gates, states = 1, 1

    def step(self, x: Tensor, state: tuple[Tensor, ...], w_x: Tensor, w_h: Tensor, b: Tensor) -> tuple[Tensor, ...]:
        return (rnn_cell(x, state[0], w_x, w_h, b),)

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out, (h_n,) = self.unroll(x, None if h0 is None else (h0,))
        return out, h_n

    @classmethod
    def from_torch(cls, rnn: nn.RNN) -> ScratchRNN:
        """A ScratchRNN computing the same function as ``rnn`` (tanh nonlinearity)."""
        ref = rnn.weight_ih_l0
        ours = cls(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bidirectional, rnn.dropout)
        return load_torch_rnn(ours.to(dtype=ref.dtype, device=ref.device), rnn)


def load_torch_rnn(ours: ScratchRNN, rnn: nn.RNN) -> ScratchRNN:
    """Copy torch's weights into ``ours``."""
    if rnn.nonlinearity != "tanh":
        raise ValueError(f"torch.nn.RNN(nonlinearity={rnn.nonlinearity!r}) has no counterpart here (tanh only)")
    if not ours.same_shape(rnn):
        raise ValueError("the ScratchRNN and the torch.nn.RNN differ in size, layers or directions")
    ours.copy_torch_weights(rnn)
    return ours
