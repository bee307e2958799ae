"""What the recurrent models (``lstm``, ``rnn``) share: the way in (token embedding or features), the
recurrence, the head (one output per sequence or one per step), and the split of the forward pass at the
recurrence's input that ``grad_norm/first_step`` measures (nnexp/step_gradients.py).

A subclass builds ``self.rnn``, a module with torch's ``batch_first`` calling convention
(``out, h_n`` or ``out, (h_n, c_n)``), by calling :meth:`Recurrent._setup` and then :meth:`Recurrent._head`.
"""

from __future__ import annotations

import torch
from torch import nn


class Recurrent(nn.Module):
    name = "recurrent"  # the model's group option, for messages

    def _setup(self, input_shape: tuple[int, ...], vocab_size: int | None, embed_dim: int, bidirectional: bool,
               causal: bool, per_step: bool) -> int:
        """The checks on the data and the way in; returns the features per step the recurrence reads."""
        if len(input_shape) not in (1, 2):
            raise ValueError(f"{self.name} needs sequences (T,) of tokens or (T, F) of features; "
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
        return features

    def _head(self, hidden_size: int, dropout: float, num_outputs: int) -> None:
        width = hidden_size * (2 if self.bidirectional else 1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(width, num_outputs)

    def sequence_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The batch as the recurrence reads it: (B, T, F), step t at ``[:, t]``."""
        x = self.embed(x)
        return x.unsqueeze(-1) if self.unsqueeze else x

    def from_sequence_inputs(self, z: torch.Tensor) -> torch.Tensor:
        """The rest of the forward pass, from :meth:`sequence_inputs`' output."""
        out, state = self.rnn(z)  # out (B, T, H*dirs); h_n (layers*dirs, B, H)
        if self.per_step:
            return self.head(self.drop(out))  # (B, T, num_outputs)
        if self.bidirectional:  # forward direction: last step; backward direction: first step
            h_n = state[0] if isinstance(state, tuple) else state  # the LSTM also returns c_n
            last = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (B, 2H)
        else:
            last = out[:, -1]  # (B, H)
        return self.head(self.drop(last))  # (B, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_sequence_inputs(self.sequence_inputs(x))
