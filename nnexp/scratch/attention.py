"""Scaled dot-product attention from the formula (Vaswani et al. 2017, as in the course seed).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V,   q_i = x_i W_Q, k_i = x_i W_K, v_i = x_i W_V

Masks follow torch's convention: a boolean mask is True where attention is
allowed; a float mask is added to the scores. ``causal`` lets position i look
at positions <= i only.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v) -> out (..., Tq, d_v), weights (..., Tq, Tk)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if causal:
        tq, tk = scores.shape[-2:]
        allowed = torch.ones(tq, tk, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    weights = torch.softmax(scores, dim=-1)  # each row sums to 1 over the keys
    return weights @ v, weights


class MultiHeadAttention(nn.Module):
    """h heads of scaled dot-product attention on learned projections, concatenated and projected.

    Inputs are batch-first: (B, T, d_model). Returns the output and the
    attention weights of every head, (B, h, Tq, Tk).
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_k).transpose(1, 2)  # (B, h, T, d_k)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        key = query if key is None else key
        value = key if value is None else value
        q, k, v = self._heads(self.w_q(query)), self._heads(self.w_k(key)), self._heads(self.w_v(value))
        if mask is not None and mask.dim() == 3:  # (B, Tq, Tk): the same mask for every head
            mask = mask.unsqueeze(1)
        out, weights = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)  # (B, h, Tq, d_k)
        out = self.dropout(out)
        b, _, tq, _ = out.shape
        out = out.transpose(1, 2).reshape(b, tq, self.d_model)  # concatenate the heads: (B, Tq, d_model)
        return self.w_o(out), weights

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """The same function as a ``torch.nn.MultiheadAttention`` (q/k/v stacked in in_proj_weight)."""
        d = mha.embed_dim
        bias = mha.in_proj_bias is not None
        ours = cls(d, mha.num_heads, bias=bias).to(dtype=mha.in_proj_weight.dtype, device=mha.in_proj_weight.device)
        with torch.no_grad():
            for i, lin in enumerate((ours.w_q, ours.w_k, ours.w_v)):
                lin.weight.copy_(mha.in_proj_weight[i * d:(i + 1) * d])
                if bias:
                    lin.bias.copy_(mha.in_proj_bias[i * d:(i + 1) * d])
            ours.w_o.weight.copy_(mha.out_proj.weight)
            if bias:
                ours.w_o.bias.copy_(mha.out_proj.bias)
        return ours
