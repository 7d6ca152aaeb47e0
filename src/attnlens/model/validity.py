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
        pattern = attention[index, :, :, :length, :length]  # (layer, head, q, k)
        # A NaN or inf anywhere makes its row's sum NaN or inf (weights are at most 1: no overflow), so
        # the sums show it; testing every weight took 60 ms for SmolLM2's 270 heads of 256 x 256.
        sums = pattern.sum(dim=-1, dtype=torch.float32)  # (layer, head, q)
        if not torch.isfinite(sums).all():
            raise AttentionInvalid(f"sequence {index}: attention holds NaN or inf values.")
        row_error = (sums - 1.0).abs().max().item()
        if row_error > tolerance:
            raise AttentionInvalid(
                f"sequence {index}: attention rows sum to 1 only within {row_error:.2e} "
                f"(allowed {tolerance:.1e}); the model's attention output is not a softmax over keys."
            )
        leak = _largest_above_diagonal(pattern)
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


def _largest_above_diagonal(pattern: Float[torch.Tensor, "... q k"], block: int = 32) -> float:
    """max |weight| above the diagonal, read in row blocks: for rows a..b-1 every column from b on lies
    above it, and only the block's own square needs a triangle (7x faster than a boolean-mask gather)."""
    n = pattern.shape[-1]
    largest = 0.0
    for start in range(0, n, block):
        stop = min(start + block, n)
        if stop < n:
            largest = max(largest, pattern[..., start:stop, stop:].abs().amax().item())
        square = pattern[..., start:stop, start:stop]
        largest = max(largest, torch.triu(square, diagonal=1).abs().amax().item())
    return largest
