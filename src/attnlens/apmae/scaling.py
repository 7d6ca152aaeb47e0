"""From raw attention probabilities to the images AP-MAE sees: pooling, then per-head log-normalisation.

Both steps run on whole batches of heads on the tensor's device; nothing loops over heads in Python.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from attnlens.errors import CheckpointMismatch


def pool_patterns(patterns: Float[Tensor, "batch q k"], factor: int) -> Float[Tensor, "batch q2 k2"]:
    """Average-pool each pattern by `factor` in both directions.

    Averaging probabilities keeps the causal structure (a pooled cell above the diagonal covers only zeros,
    so it stays exactly 0) and keeps row mass meaningful (each pooled row sums to 1/factor).
    """
    if factor == 1:
        return patterns
    return F.avg_pool2d(patterns.unsqueeze(1), kernel_size=factor).squeeze(1)


def log_normalize(patterns: Float[Tensor, "batch q k"]) -> Float[Tensor, "batch q k"]:
    """The paper's per-head scaler: `1 - log(a) / m`, where `m` is the head's smallest finite log value.

    An attention of 1 maps to 1, the head's smallest nonzero attention maps to 0, and zeros (the upper
    triangle, underflow) map to 0. A head whose nonzero entries are all 1 (m = 0) maps them to 1.
    Output is float32 in [0, 1].
    """
    x = patterns.float()
    positive = x > 0
    logs = torch.where(positive, x, torch.ones_like(x)).log()  # (batch, q, k); 0 where a == 0
    m = logs.amin(dim=(-2, -1), keepdim=True)  # (batch, 1, 1); zeros cannot win: finite logs are <= 0
    # m == 0 only when every nonzero entry is 1; dividing by -1 then maps those entries to 1 as well.
    m = torch.where(m < 0, m, torch.full_like(m, -1.0))
    scaled = 1.0 - logs / m
    return torch.where(positive, scaled, torch.zeros_like(scaled)).clamp_(0.0, 1.0)


def prepare_patterns(
    patterns: Float[Tensor, "batch q k"], *, source_length: int, max_length: int
) -> Float[Tensor, "batch s s"]:
    """Raw attention probabilities (batch, n, n) -> scaled images (batch, max_length, max_length).

    A pattern shorter than `source_length` is zero-padded at the bottom and right first (as the reference
    code does for short inputs); the model was trained on full windows, so such images are out of its
    training distribution. A longer one is an error.
    """
    if patterns.ndim != 3 or patterns.shape[-1] != patterns.shape[-2]:
        raise CheckpointMismatch(
            f"expected square patterns shaped (batch, q, k); got {tuple(patterns.shape)}. "
            "Reshape a capture's attention to (layer*head, q, k) first."
        )
    n = patterns.shape[-1]
    if n > source_length:
        raise CheckpointMismatch(
            f"patterns are {n}x{n} but this AP-MAE takes at most {source_length}x{source_length}; "
            f"use windows of {source_length} tokens or a checkpoint trained for {n}."
        )
    if n < source_length:
        patterns = F.pad(patterns, (0, source_length - n, 0, source_length - n))
    return log_normalize(pool_patterns(patterns.float(), source_length // max_length))
