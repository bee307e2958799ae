"""Plain (Elman) recurrent network, h_t = tanh(W_x x_t + W_h h_{t-1} + b): the LSTM's keys and heads
(nnexp/models/recurrent.py) without its gates, so the gradient through time is a product of
W_h^T diag(1 - h_t^2) factors and vanishes (or explodes) with the distance (Bengio et al. 1994).

``cell`` picks the recurrence: ``torch`` (torch.nn.RNN) or ``scratch`` (nnexp/scratch/rnn.py: the
equation above, checked against torch.nn.RNN by ``nnexp check``).
"""

from __future__ import annotations

from torch import nn

from nnexp.models.recurrent import Recurrent
from nnexp.options import models as options


class RNN(Recurrent):
    name = "rnn"

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_outputs: int,
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        cell: str = "torch",
        embed_dim: int = 32,
        vocab_size: int | None = None,
        per_step: bool = False,
        causal: bool = False,
    ) -> None:
        super().__init__()
        options.rnn(hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
                    cell=cell, embed_dim=embed_dim)
        features = self._setup(input_shape, vocab_size, embed_dim, bidirectional, causal, per_step)
        between = dropout if num_layers > 1 else 0.0  # dropout acts between stacked layers
        if cell == "torch":
            self.rnn: nn.Module = nn.RNN(features, hidden_size, num_layers, nonlinearity="tanh", batch_first=True,
                                         dropout=between, bidirectional=bidirectional)
        else:
            from nnexp.scratch.rnn import ScratchRNN

            self.rnn = ScratchRNN(features, hidden_size, num_layers, bidirectional=bidirectional, dropout=between)
        self._head(hidden_size, dropout, num_outputs)
