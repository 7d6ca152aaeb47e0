"""Pre-LayerNorm transformer blocks shared by the AP-MAE encoder and decoder.

Attribute names (`norm`, `to_qkv`, `to_out.0`, `net.0/1/4`, `layers.{i}.{0,1}`) are those of the released
checkpoints' state dicts, so their safetensors load without renaming.
"""

from __future__ import annotations

from typing import cast

import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float
from torch import Tensor, nn
from transformers.activations import ACT2FN


class FeedForward(nn.Module):
    """LayerNorm -> Linear -> activation -> Linear (the residual is added by `Transformer`)."""

    def __init__(self, dim: int, hidden_dim: int, *, act: str, eps: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim, eps=eps),
            nn.Linear(dim, hidden_dim),
            ACT2FN[act],
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Float[Tensor, "batch token dim"]) -> Float[Tensor, "batch token dim"]:
        return self.net(x)


class Attention(nn.Module):
    """LayerNorm -> multi-head self-attention over all tokens (no mask: every token sees every other)."""

    def __init__(
        self, dim: int, *, heads: int, dim_head: int, eps: float, qkv_bias: bool, dropout: float = 0.0
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.dropout = dropout
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=qkv_bias)
        # The released code skips the output projection only for one head as wide as the model.
        project_out = not (heads == 1 and dim_head == dim)
        self.to_out = (
            nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout)) if project_out else nn.Identity()
        )

    def forward(self, x: Float[Tensor, "batch token dim"]) -> Float[Tensor, "batch token dim"]:
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in (q, k, v))
        # scaled_dot_product_attention uses 1/sqrt(dim_head), the released scale.
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class Transformer(nn.Module):
    """`depth` residual blocks of (Attention, FeedForward), then a final LayerNorm."""

    def __init__(
        self,
        dim: int,
        *,
        depth: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        act: str,
        eps: float,
        qkv_bias: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    Attention(
                        dim, heads=heads, dim_head=dim_head, eps=eps, qkv_bias=qkv_bias, dropout=dropout
                    ),
                    FeedForward(dim, mlp_dim, act=act, eps=eps, dropout=dropout),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, x: Float[Tensor, "batch token dim"]) -> Float[Tensor, "batch token dim"]:
        for block in self.layers:
            # ModuleList iterates as plain Modules; each block here is the (Attention, FeedForward) pair.
            attend, feed_forward = cast(nn.ModuleList, block)
            x = attend(x) + x
            x = feed_forward(x) + x
        return self.norm(x)
