"""Cheap per-head facts computed from raw attention while it is still in memory: a small thumbnail for the
gallery and the head-type scores (`attnlens.contracts.head_scores`): five that apply to every pattern
(self, previous token, sink column, local band, broad) and six that read a relation between the input's
tokens (`attnlens.mining.token_relations`) and are absent where the input has none.

Raw patterns are never stored (one 256x256 head is 256 KiB); these are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float

from attnlens.contracts.head_scores import LOCAL_WINDOW, RELATION_OF_SCORE, RELATIONAL_SCORE_NAMES
from attnlens.mining.token_relations import TokenRelation

STAT_NAMES = ("entropy", "diagonal_mass", "previous_token_mass", "first_token_mass", "local_mass")


@dataclass(frozen=True)
class PatternStats:
    """Per-head statistics, each averaged over query rows. Shapes: one value per pattern."""

    entropy: np.ndarray  # mean row entropy divided by log(row length): 0 = one key, 1 = uniform
    diagonal_mass: np.ndarray  # attention on the query's own token
    previous_token_mass: np.ndarray  # attention on the token just before (rows 1..)
    first_token_mass: np.ndarray  # attention on token 0 (the "sink" column)
    local_mass: np.ndarray  # attention within the last LOCAL_WINDOW tokens
    # Relational score name -> one value per pattern, or None where the input has no such token pairs.
    relational: dict[str, np.ndarray | None] = field(default_factory=dict)

    def row(self, index: int) -> dict[str, float | None]:
        values: dict[str, float | None] = {name: float(getattr(self, name)[index]) for name in STAT_NAMES}
        for name in RELATIONAL_SCORE_NAMES:
            column = self.relational.get(name)
            values[name] = None if column is None else float(column[index])
        return values

    def column(self, name: str) -> np.ndarray | None:
        """One value per pattern, or None when the score does not apply to this input."""
        return self.relational.get(name) if name in RELATIONAL_SCORE_NAMES else getattr(self, name)


ENTROPY_BLOCK = 64


def _row_entropy(p: Float[torch.Tensor, "batch q k"]) -> Float[torch.Tensor, "batch q"]:
    """-sum p log p of every row (xlogy(0, 0) = 0), reading only the causal part: rows a..b-1 of a causal
    pattern have no weight past key b-1, so each block of rows stops there (half the work of all keys)."""
    n = p.shape[-1]
    entropy = torch.empty(p.shape[:-1], dtype=p.dtype, device=p.device)
    for start in range(0, n, ENTROPY_BLOCK):
        stop = min(start + ENTROPY_BLOCK, n)
        block = p[..., start:stop, :stop]
        entropy[..., start:stop] = -torch.special.xlogy(block, block).sum(-1)
    return entropy


def relational_scores(
    p: Float[torch.Tensor, "batch q k"], relation: TokenRelation
) -> Float[torch.Tensor, " batch"] | None:
    """Mean over the relation's query rows of the attention mass on that row's related keys, or None
    when the relation has no pairs. Reads only the pairs (a gather), never a full-size mask."""
    if not relation.applies:
        return None
    queries = torch.as_tensor(relation.queries, device=p.device)
    keys = torch.as_tensor(relation.keys, device=p.device)
    per_pair = p[:, queries, keys]  # (batch, pairs)
    rows, row_of_pair = torch.unique(queries, return_inverse=True)
    per_row = torch.zeros(p.shape[0], len(rows), dtype=p.dtype, device=p.device)
    per_row.index_add_(1, row_of_pair, per_pair)  # (batch, rows): mass on the related keys of each row
    return per_row.mean(-1)


def pattern_stats(
    patterns: Float[torch.Tensor, "batch q k"], relations: dict[str, TokenRelation] | None = None
) -> PatternStats:
    """Statistics of causal attention patterns (rows sum to 1), vectorised over the batch.

    One pass over the full patterns (the entropy); the rest reads diagonals. The first version built
    full-size masks and temporaries and took 16% of an atlas build (270 heads of 256 x 256 a scenario)."""
    p = patterns.float()
    batch, n = p.shape[0], p.shape[-1]
    rows = torch.arange(n, device=p.device)
    # Row i has i+1 keys; normalising by log(i+1) makes rows of all lengths comparable (row 0 has none).
    row_entropy = _row_entropy(p)  # (batch, q)
    norm = torch.log((rows + 1).float())
    entropy = (row_entropy[:, 1:] / norm[1:]).mean(-1) if n > 1 else torch.zeros(batch)
    diagonal = torch.diagonal(p, dim1=-2, dim2=-1).mean(-1)
    previous = torch.diagonal(p, offset=-1, dim1=-2, dim2=-1).mean(-1) if n > 1 else torch.zeros(batch)
    first = p[..., :, 0].mean(-1)
    # Mass within the last LOCAL_WINDOW keys (q - k in 0..LOCAL_WINDOW-1), averaged over the n rows:
    # the sum of the first LOCAL_WINDOW sub-diagonals, divided by n.
    local_mass = (
        sum(torch.diagonal(p, offset=-d, dim1=-2, dim2=-1).sum(-1) for d in range(min(LOCAL_WINDOW, n))) / n
    )
    as_np = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    relational: dict[str, np.ndarray | None] = {}
    for name in RELATIONAL_SCORE_NAMES:
        relation = (relations or {}).get(RELATION_OF_SCORE[name])
        score = None if relation is None else relational_scores(p, relation)
        relational[name] = None if score is None else as_np(score)
    return PatternStats(
        as_np(entropy), as_np(diagonal), as_np(previous), as_np(first), as_np(local_mass), relational
    )


def thumbnails(patterns: Float[torch.Tensor, "batch q k"], size: int = 32) -> np.ndarray:
    """`(batch, size, size)` uint8 images: average-pooled attention on a log scale (0 = nothing,
    255 = the largest pooled value of that head), so that faint structure stays visible at gallery size."""
    p = patterns.float()
    n = p.shape[-1]
    if n % size:
        p = F.interpolate(p[:, None], size=(size, size), mode="area")[:, 0]
    else:
        p = F.avg_pool2d(p[:, None], kernel_size=n // size)[:, 0]
    logged = torch.log1p(p * 1e3)  # attention spans many decades; a log scale shows more than a linear one
    peak = logged.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return (logged / peak * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
