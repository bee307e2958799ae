"""LSTM sequence model: one prediction per sequence (class or value) or one per time step.

``cell`` picks the recurrence: ``torch`` (torch.nn.LSTM, fast), ``standard``
or ``seed`` (nnexp/scratch/lstm.py: the standard equations, or the course
seed's Jozefowicz et al. form), all with the same calling convention. The way
in and the heads are the recurrent models' (nnexp/models/recurrent.py).
"""

from __future__ import annotations

from torch import nn

from nnexp.models.recurrent import Recurrent
from nnexp.options import models as options


class LSTM(Recurrent):
    name = "lstm"

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
        options.lstm(hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
                     cell=cell, embed_dim=embed_dim)
        features = self._setup(input_shape, vocab_size, embed_dim, bidirectional, causal, per_step)
        between = dropout if num_layers > 1 else 0.0  # dropout acts between stacked layers
        if cell == "torch":
            self.rnn: nn.Module = nn.LSTM(features, hidden_size, num_layers, batch_first=True,
                                          dropout=between, bidirectional=bidirectional)
        else:
            from nnexp.scratch.lstm import ScratchLSTM

            self.rnn = ScratchLSTM(features, hidden_size, num_layers, bidirectional=bidirectional,
                                   dropout=between, form=cell)
        self._head(hidden_size, dropout, num_outputs)
