"""Ablate heads and re-generate: what changed in the completion, the expected token's probability, and
the next-token distribution at the hole."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float

from attnlens.heads import HeadRef
from attnlens.model import Generation, TargetModel


@dataclass(frozen=True)
class DiffOp:
    """One run of a token-level diff between the baseline and the ablated completion."""

    op: str  # "equal", "replace", "delete" (only in baseline), "insert" (only in ablated)
    baseline: list[str]
    ablated: list[str]


@dataclass
class AblationOutcome:
    """Baseline vs ablated completion of one prompt."""

    heads: list[str]
    baseline_text: str
    ablated_text: str
    baseline_ids: list[int]
    ablated_ids: list[int]
    diff: list[DiffOp]
    kl_at_hole: float  # KL(baseline || ablated) of the next-token distribution at the hole, in nats
    expected_token_id: int | None = None
    p_expected_baseline: float | None = None
    p_expected_ablated: float | None = None
    changed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def delta_p_expected(self) -> float | None:
        if self.p_expected_baseline is None or self.p_expected_ablated is None:
            return None
        return self.p_expected_ablated - self.p_expected_baseline


def kl_divergence(
    p_logits: Float[torch.Tensor, " vocab"], q_logits: Float[torch.Tensor, " vocab"]
) -> float:
    """KL(P || Q) in nats between the softmax distributions of two logit vectors (float64 for accuracy)."""
    log_p = torch.log_softmax(p_logits.double(), dim=-1)
    log_q = torch.log_softmax(q_logits.double(), dim=-1)
    value = float((log_p.exp() * (log_p - log_q)).sum())
    return max(value, 0.0)  # rounding can give -1e-17 for identical inputs


def token_diff(model: TargetModel, baseline: Sequence[int], ablated: Sequence[int]) -> list[DiffOp]:
    """A token-level diff (difflib's opcodes over token ids, shown as token strings)."""
    matcher = difflib.SequenceMatcher(a=list(baseline), b=list(ablated), autojunk=False)
    ops = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        ops.append(
            DiffOp(
                op=tag,
                baseline=[model.decode([t]) for t in baseline[i1:i2]] if baseline[i1:i2] else [],
                ablated=[model.decode([t]) for t in ablated[j1:j2]] if ablated[j1:j2] else [],
            )
        )
    return ops


def ablate_and_regenerate(
    model: TargetModel,
    prompt_ids: Sequence[int],
    heads: Iterable[HeadRef],
    *,
    max_new_tokens: int,
    expected_token_id: int | None = None,
    stop_ids: Iterable[int] | None = None,
    baseline: Generation | None = None,
) -> AblationOutcome:
    """Generate with and without the heads ablated and compare. Ablating no head reproduces the baseline
    exactly (same tokens, zero KL), because no hook is installed at all."""
    refs = sorted(frozenset(heads))
    stops = list(stop_ids) if stop_ids is not None else None
    if baseline is None:
        baseline = model.generate(prompt_ids, max_new_tokens, stop_ids=stops)
    ablated = model.generate(prompt_ids, max_new_tokens, ablate=refs, stop_ids=stops)
    outcome = AblationOutcome(
        heads=[r.name for r in refs],
        baseline_text=baseline.text,
        ablated_text=ablated.text,
        baseline_ids=baseline.new_ids,
        ablated_ids=ablated.new_ids,
        diff=token_diff(model, baseline.new_ids, ablated.new_ids),
        kl_at_hole=kl_divergence(baseline.first_logits, ablated.first_logits),
        changed=baseline.new_ids != ablated.new_ids,
    )
    if expected_token_id is not None:
        outcome.expected_token_id = expected_token_id
        outcome.p_expected_baseline = _probability(baseline.first_logits, expected_token_id)
        outcome.p_expected_ablated = _probability(ablated.first_logits, expected_token_id)
    return outcome


def _probability(logits: Float[torch.Tensor, " vocab"], token_id: int) -> float:
    value = float(torch.softmax(logits.double(), dim=-1)[token_id])
    return 0.0 if math.isnan(value) else value
