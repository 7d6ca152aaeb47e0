"""Checks that captured attention really is a causal attention pattern.

Upstream transformers has shipped attention that came back `None`, empty, or without the causal mask;
every capture runs these checks so that a bad extraction fails loudly instead of filling an atlas.
"""

from __future__ import annotations

import torch
from jaxtyping import Float

from attnlens.errors import AttentionInvalid


def check_attention(
    attention: Float[torch.Tensor, "batch layer head q k"],
    lengths: list[int],
    *,
    n_heads: int,
    tolerance: float,
) -> None:
    """Raise `AttentionInvalid` unless, for every sequence's real tokens, rows sum to 1 within `tolerance`,
    everything above the diagonal is exactly 0, and there is one pattern per query head."""
    if attention.shape[2] != n_heads:
        raise AttentionInvalid(
            f"captured {attention.shape[2]} patterns per layer but the model has {n_heads} query heads; "
            "with grouped-query attention the capture must expand KV heads to query heads."
        )
    for index, length in enumerate(lengths):
        pattern = attention[index, :, :, :length, :length].float()  # (layer, head, q, k)
        if not torch.isfinite(pattern).all():
            raise AttentionInvalid(f"sequence {index}: attention holds NaN or inf values.")
        row_error = (pattern.sum(dim=-1) - 1.0).abs().max().item()
        if row_error > tolerance:
            raise AttentionInvalid(
                f"sequence {index}: attention rows sum to 1 only within {row_error:.2e} "
                f"(allowed {tolerance:.1e}); the model's attention output is not a softmax over keys."
            )
        upper = torch.triu(torch.ones(length, length, dtype=torch.bool, device=pattern.device), diagonal=1)
        leak = pattern[..., upper].abs().max().item() if length > 1 else 0.0
        if leak != 0.0:
            raise AttentionInvalid(
                f"sequence {index}: attention to future tokens ({leak:.2e}); the causal mask was not "
                "applied. Load the model with attn_implementation='eager'."
            )
        if (
            length < attention.shape[-1]
            and attention[index, :, :, :length, length:].abs().max().item() != 0.0
        ):
            raise AttentionInvalid(
                f"sequence {index}: real tokens attend to padding; the attention mask was ignored."
            )
