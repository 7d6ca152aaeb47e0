"""Whether the model completes a scenario correctly: first token (the paper's measure) and whole span."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def span_correct(model: TargetModel, scenario: Scenario) -> tuple[bool, Generation]:
    """Greedy generation of as many tokens as the target has (or until a stop token); correct when the
    generated ids equal the target's ids exactly."""
    if not scenario.target_ids:
        raise InvalidInput("the scenario has no target tokens.")
    generation = model.generate(scenario.prompt_ids, max_new_tokens=len(scenario.target_ids))
    return generation.new_ids == scenario.target_ids, generation
