"""LSTM sequence model: one prediction per sequence (class or value) or one per time step.

``cell`` picks the recurrence: ``torch`` (torch.nn.LSTM, fast), ``standard``
or ``seed`` (nnexp/scratch/lstm.py: the standard equations, or the course
seed's Jozefowicz et al. form), all with the same calling convention.
"""

from __future__ import annotations

import torch
from torch import nn

from nnexp.options import models as options


class LSTM(nn.Module):
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
        if len(input_shape) not in (1, 2):
            raise ValueError(f"lstm needs sequences (T,) of tokens or (T, F) of features; "
                             f"this dataset gives inputs of shape {tuple(input_shape)}")
        if causal and bidirectional:
            raise ValueError("bidirectional=true reads the sequence backwards too, so it would see the next "
                             "token it must predict; use bidirectional=false for next-token data")
        self.per_step, self.bidirectional = per_step, bidirectional
        if vocab_size:
            self.embed: nn.Module = nn.Embedding(vocab_size, embed_dim)  # (B, T) ids -> (B, T, E)
            features = embed_dim
        else:
            self.embed = nn.Identity()
            features = input_shape[1] if len(input_shape) == 2 else 1
        self.unsqueeze = not vocab_size and len(input_shape) == 1  # (B, T) values -> (B, T, 1)
        between = dropout if num_layers > 1 else 0.0  # dropout acts between stacked layers
        if cell == "torch":
            self.rnn: nn.Module = nn.LSTM(features, hidden_size, num_layers, batch_first=True,
                                          dropout=between, bidirectional=bidirectional)
        else:
            from nnexp.scratch.lstm import ScratchLSTM

            self.rnn = ScratchLSTM(features, hidden_size, num_layers, bidirectional=bidirectional,
                                   dropout=between, form=cell)
        width = hidden_size * (2 if bidirectional else 1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(width, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        if self.unsqueeze:
            x = x.unsqueeze(-1)
        out, (h_n, _) = self.rnn(x)  # out (B, T, H*dirs); h_n (layers*dirs, B, H)
        if self.per_step:
            return self.head(self.drop(out))  # (B, T, num_outputs)
        if self.bidirectional:  # noqa: SIM108 - forward direction: last step; backward direction: first step
            last = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (B, 2H)
        else:
            last = out[:, -1]  # (B, H)
        return self.head(self.drop(last))  # (B, num_outputs)
