"""Transformer encoder on our own scaled dot-product attention (nnexp/scratch/attention.py).

Pre-norm blocks: x + MHA(LN(x)), then x + FFN(LN(x)); sinusoidal positional
encoding; heads for one prediction per sequence (mean over positions) or one
per time step. ``causal`` (forced on for next-token data) lets position t
attend to positions <= t only. The last forward's attention weights are kept
in ``attention`` (one (B, heads, T, T) tensor per layer) for plotting.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nnexp.models import activation as make_activation
from nnexp.options import models as options
from nnexp.scratch.attention import MultiHeadAttention


def sinusoidal_encoding(length: int, d_model: int) -> torch.Tensor:
    """PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(...): (length, d_model)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq[: d_model // 2])
    return pe


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), make_activation(activation), drop, nn.Linear(d_ff, d_model))
        self.drop = drop  # (a module without state: sharing it is the same as two copies)

    def forward(self, x: torch.Tensor, causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        attended, weights = self.attn(self.norm1(x), causal=causal)  # (B, T, d), (B, h, T, T)
        x = x + self.drop(attended)
        x = x + self.drop(self.ff(self.norm2(x)))
        return x, weights


class Transformer(nn.Module):
    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_outputs: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 128,
        dropout: float = 0.0,
        activation: str = "relu",
        causal: bool = False,
        vocab_size: int | None = None,
        per_step: bool = False,
    ) -> None:
        super().__init__()
        options.transformer(d_model=d_model, n_heads=n_heads, n_layers=n_layers, d_ff=d_ff, dropout=dropout,
                            activation=activation, causal=causal)
        if len(input_shape) not in (1, 2):
            raise ValueError(f"transformer needs sequences (T,) of tokens or (T, F) of features; "
                             f"this dataset gives inputs of shape {tuple(input_shape)}")
        self.per_step, self.causal = per_step, causal
        length = input_shape[0]
        if vocab_size:
            self.embed: nn.Module = nn.Embedding(vocab_size, d_model)  # (B, T) ids -> (B, T, d)
        else:
            self.embed = nn.Linear(input_shape[1] if len(input_shape) == 2 else 1, d_model)
        self.unsqueeze = not vocab_size and len(input_shape) == 1
        self.register_buffer("positions", sinusoidal_encoding(length, d_model), persistent=False)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout, activation) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_outputs)
        self.attention: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unsqueeze:
            x = x.unsqueeze(-1)
        h = self.embed(x) + self.positions[: x.shape[1]]  # (B, T, d)
        self.attention = []
        for block in self.blocks:
            h, weights = block(h, self.causal)
            self.attention.append(weights.detach())
        h = self.norm(h)
        if self.per_step:
            return self.head(h)  # (B, T, num_outputs)
        return self.head(h.mean(dim=1))  # pool over positions: (B, num_outputs)
