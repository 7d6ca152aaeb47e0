"""Whether the model completes a scenario correctly: first token (the paper's measure) and whole span."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor

from attnlens.errors import InvalidInput

if TYPE_CHECKING:
    from attnlens.mining.scenarios import Scenario
    from attnlens.model.target import Generation, TargetModel


def first_token_correct(logits_at_hole: Float[Tensor, " vocab"], scenario: Scenario) -> bool:
    """The paper's definition: the greedy next token at the hole is the target's first token."""
    if logits_at_hole.ndim != 1:
        raise InvalidInput(
            f"expected the logits of one position (shape [vocab]), got shape {tuple(logits_at_hole.shape)}; "
            "pass Capture.last_logits[i] or TargetModel.next_token_logits(prompt_ids)."
        )
    if not scenario.target_ids:
        raise InvalidInput("the scenario has no target tokens.")
    return int(logits_at_hole.argmax()) == scenario.target_ids[0]


@dataclass(frozen=True)
class HoleConfidence:
    """How sure the model is of its next token at the hole: the honest baseline an attention predictor
    of correctness must beat (a model that is unsure is more often wrong, whatever its heads do)."""

    top1_prob: float  # probability of the greedy token
    margin: float  # top-1 minus top-2 probability
    entropy: float  # of the next-token distribution, in nats


def hole_confidence(logits_at_hole: Float[Tensor, " vocab"]) -> HoleConfidence:
    """Top-1 probability, top-1 minus top-2 margin and entropy of the softmax of one position's logits
    (in float64: a 49k-way softmax in float32 rounds small entropies to 0)."""
    if logits_at_hole.ndim != 1 or logits_at_hole.numel() < 2:
        raise InvalidInput(
            f"expected the logits of one position (shape [vocab], vocab >= 2), got shape "
            f"{tuple(logits_at_hole.shape)}."
        )
    log_p = torch.log_softmax(logits_at_hole.double(), dim=-1)
    p = log_p.exp()
    top = torch.topk(p, 2).values
    # 0 * log 0 is 0: masked-out tokens (-inf logits) contribute nothing.
    entropy = -torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum()
    return HoleConfidence(float(top[0]), float(top[0] - top[1]), max(float(entropy), 0.0))


def span_correct(model: TargetModel, scenario: Scenario) -> tuple[bool, Generation]:
    """Greedy generation of as many tokens as the target has (or until a stop token); correct when the
    generated ids equal the target's ids exactly."""
    if not scenario.target_ids:
        raise InvalidInput("the scenario has no target tokens.")
    generation = model.generate(scenario.prompt_ids, max_new_tokens=len(scenario.target_ids))
    return generation.new_ids == scenario.target_ids, generation
