"""First-token and full-span correctness against real models (tiny StarCoder2; SmolLM2 when slow)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from attnlens.errors import InvalidInput
from attnlens.mining import TASKS, first_token_correct, mine_scenarios, span_correct


def some_scenarios(files, table, fim, *, tasks=TASKS, context=64, per_task=2):
    return list(
        mine_scenarios(
            files, tokenizer=table, fim=fim, tasks=tasks, per_task=per_task, context_tokens=context
        )
    )


def test_first_token_correct_reads_the_argmax(fixture_files, tiny_table, tiny_fim):
    scenario = some_scenarios(fixture_files, tiny_table, tiny_fim, tasks=["identifiers"], per_task=1)[0]
    logits = torch.zeros(tiny_table.vocab_size)
    logits[scenario.target_ids[0]] = 5.0
    assert first_token_correct(logits, scenario)
    logits[scenario.target_ids[0] + 1] = 6.0
    assert not first_token_correct(logits, scenario)
    with pytest.raises(InvalidInput, match="shape"):
        first_token_correct(logits[None, :], scenario)


def test_span_correct_generates_exactly_the_target_length(fixture_files, tiny_table, tiny_fim, tiny_model):
    # Multi-token targets (identifiers and strings are several tiny-tokenizer tokens) and a one-token one.
    tasks = ["identifiers", "string_literals", "closing_bracket"]
    for scenario in some_scenarios(fixture_files, tiny_table, tiny_fim, tasks=tasks, per_task=1):
        correct, generation = span_correct(tiny_model, scenario)
        assert generation.prompt_ids == scenario.prompt_ids
        assert 1 <= len(generation.new_ids) <= len(scenario.target_ids)
        assert correct == (generation.new_ids == scenario.target_ids)
        # The first generated token is the argmax at the hole, so the two measures agree on it.
        first = first_token_correct(tiny_model.next_token_logits(scenario.prompt_ids), scenario)
        assert first == (generation.new_ids[0] == scenario.target_ids[0])
        # A scenario whose target is what the model generates is span-correct; one token off is not.
        if generation.stopped_by == "max_new_tokens":
            echoed = replace(scenario, target_ids=generation.new_ids)
            assert span_correct(tiny_model, echoed)[0]
            wrong = replace(scenario, target_ids=[*generation.new_ids[:-1], generation.new_ids[-1] + 1])
            assert not span_correct(tiny_model, wrong)[0]


@pytest.mark.slow
def test_smollm2_completes_some_left_to_right_scenarios(fixture_files, smollm2_table, smollm2):
    scenarios = some_scenarios(
        fixture_files,
        smollm2_table,
        None,
        tasks=["eol", "closing_bracket", "identifiers"],
        context=48,
        per_task=6,
    )
    assert len(scenarios) >= 12
    first = [first_token_correct(smollm2.next_token_logits(s.prompt_ids), s) for s in scenarios]
    spans = [span_correct(smollm2, s)[0] for s in scenarios]
    # A real code model gets a fair share of line ends and brackets right when the prompt ends on a
    # natural token boundary; a misaligned prompt (a dangling space token) would sink this.
    assert sum(first) >= len(scenarios) // 3
    assert all(
        f or not s for f, s in zip(first, spans, strict=True)
    )  # span-correct implies first-token-correct


def test_hole_confidence_on_hand_built_logits():
    """Top-1 probability, its margin over the runner-up and the entropy (nats) of softmax(logits)."""
    import math

    from attnlens.mining import hole_confidence

    # Probabilities 0.5, 0.25, 0.25: margin 0.25, entropy 1.5 ln 2.
    c = hole_confidence(torch.log(torch.tensor([0.25, 0.5, 0.25])))
    assert c.top1_prob == pytest.approx(0.5) and c.margin == pytest.approx(0.25)
    assert c.entropy == pytest.approx(1.5 * math.log(2))
    # A certain model: one token has all the mass (others -inf): entropy 0, margin 1, no NaN from 0 * log 0.
    certain = hole_confidence(torch.tensor([float("-inf"), 3.0, float("-inf")]))
    assert (certain.top1_prob, certain.margin, certain.entropy) == (1.0, 1.0, 0.0)
    # Uniform over 4: entropy ln 4, margin 0.
    uniform = hole_confidence(torch.zeros(4))
    assert uniform.entropy == pytest.approx(math.log(4)) and uniform.margin == pytest.approx(0.0)
    with pytest.raises(InvalidInput):
        hole_confidence(torch.zeros(2, 3))
