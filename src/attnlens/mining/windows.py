"""Prompt windows of exactly N tokens around a hole: FIM (PSM order) or left-to-right.

Token ids are slices of the whole file's tokenization, cut only at that tokenization's boundaries, so
the model sees the file's natural tokens (never a lone space token that the file's tokenization glued
to the next word). `docs/tasks.md` explains the layout with examples.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnlens.contracts.models import FimTokens
from attnlens.mining.tokens import FileTokens, is_char_boundary

FIM_MARKERS = 3  # prefix, suffix and middle marker, however the model family spells them


@dataclass(frozen=True)
class Hole:
    """Hole tokens [first, last] of the file tokenization and their bytes [start, end)."""

    first: int
    last: int
    start: int
    end: int
    alignment: str


@dataclass(frozen=True)
class Window:
    prompt_ids: list[int]
    n_prefix_tokens: int
    n_suffix_tokens: int
    start: int  # first source byte shown to the model
    end: int  # byte after the last source byte shown


def align_hole(tokens: FileTokens, start: int, end: int) -> Hole:
    """Widen bytes [start, end) to the boundaries of the file tokens that contain them.

    `alignment` is `exact` when nothing moved, else `widened:left=L,right=R` (bytes added on each side).
    """
    first = tokens.index_at(start)
    last = tokens.index_at(end - 1)
    hole_start = int(tokens.starts[first])
    hole_end = int(tokens.starts[last + 1])
    left, right = start - hole_start, hole_end - end
    alignment = "exact" if left == 0 and right == 0 else f"widened:left={left},right={right}"
    return Hole(first=first, last=last, start=hole_start, end=hole_end, alignment=alignment)


def fim_window(
    tokens: FileTokens, hole: Hole, context_tokens: int, fim: FimTokens, bos: int | None = None
) -> Window | None:
    """`[bos] <fim_prefix> prefix <fim_suffix> suffix <fim_middle>` (in the family's spelling), exactly
    `context_tokens` long, or None. `bos` leads the prompt of models trained with one (see
    `TokenTable.prompt_bos`) and takes one token of the window.

    As in the paper: prefix and suffix are balanced (prefix gets the odd token), the prefix starts at
    the file start when the hole is near it (the suffix then fills the window), and the prefix grows
    when the suffix runs out. Each marker appears once.
    """
    lead = [] if bos is None else [bos]
    budget = context_tokens - FIM_MARKERS - len(lead)
    have_prefix = hole.first
    have_suffix = tokens.n - hole.last - 1
    if have_prefix + have_suffix < budget:
        return None
    n_prefix = min(have_prefix, (budget + 1) // 2)
    n_suffix = min(have_suffix, budget - n_prefix)
    n_prefix = budget - n_suffix
    begin, stop = hole.first - n_prefix, hole.last + 1 + n_suffix
    ids = tokens.ids
    prompt = [
        *lead,
        fim.prefix,
        *ids[begin : hole.first].tolist(),
        fim.suffix,
        *ids[hole.last + 1 : stop].tolist(),
        fim.middle,
    ]
    return Window(prompt, n_prefix, n_suffix, int(tokens.starts[begin]), int(tokens.starts[stop]))


def l2r_window(tokens: FileTokens, hole: Hole, context_tokens: int, bos: int | None = None) -> Window | None:
    """`[bos]` and the file tokens right before the hole, `context_tokens` in all, or None when the hole
    is too early."""
    lead = [] if bos is None else [bos]
    n_prefix = context_tokens - len(lead)
    begin = hole.first - n_prefix
    if begin < 0:
        return None
    prompt = [*lead, *tokens.ids[begin : hole.first].tolist()]
    return Window(prompt, n_prefix, 0, int(tokens.starts[begin]), hole.start)


def clean_cuts(source: bytes, *cuts: int) -> bool:
    """Whether no cut splits a UTF-8 character (byte-level BPE may split one across tokens)."""
    return all(is_char_boundary(source, cut) for cut in cuts)
