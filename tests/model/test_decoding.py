"""Greedy decoding that checks a draft first gives the completion plain greedy decoding gives, whatever the
draft holds, and runs the model once when the draft is right (tiny random StarCoder2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef
from attnlens.model import TargetModel
from attnlens.model.decoding import propose

JAVA = "public static int max(int a, int b) {\n    return a >= b ? a : b;\n}\n"
BUDGET = 8


@pytest.fixture(scope="module")
def prompt(tiny_model: TargetModel) -> list[int]:
    return tiny_model.encode(JAVA * 3)[:48]


@contextmanager
def counted_passes(model: TargetModel) -> Iterator[list[int]]:
    """How many times the model's forward runs inside the block (one entry per pass: its input length)."""
    calls: list[int] = []
    handle = model.model.register_forward_pre_hook(
        lambda _m, _a, kwargs: calls.append(int(kwargs["input_ids"].shape[1])), with_kwargs=True
    )
    try:
        yield calls
    finally:
        handle.remove()


def drafts(right: list[int]) -> dict[str, list[int]]:
    wrong = [(t + 7) % 97 + 3 for t in right]
    return {
        "empty": [],
        "right": right,
        "all wrong": wrong,
        "wrong from the third token": right[:2] + wrong[2:],
        "right but short": right[:3],
        "right and longer than the budget": right + wrong,
        "wrong at the last token": right[:-1] + wrong[-1:],
    }


@pytest.mark.parametrize("ablate", [(), (HeadRef(0, 1), HeadRef(2, 3))], ids=["plain", "ablated"])
@pytest.mark.parametrize(
    "case",
    ["empty", "right", "all wrong", "wrong from the third token", "right but short",
     "right and longer than the budget", "wrong at the last token"],
)  # fmt: skip
def test_any_draft_gives_the_greedy_completion(
    tiny_model: TargetModel, prompt: list[int], ablate: tuple[HeadRef, ...], case: str
):
    plain = tiny_model.generate(prompt, BUDGET, ablate=ablate)
    assert len(plain.new_ids) == BUDGET, "the tiny model should not stop early for these prompts"
    drafted = tiny_model.generate(prompt, BUDGET, ablate=ablate, draft=drafts(plain.new_ids)[case])
    assert drafted.new_ids == plain.new_ids
    assert drafted.text == plain.text and drafted.stopped_by == plain.stopped_by
    assert torch.allclose(drafted.first_logits, plain.first_logits, atol=1e-5)


def test_a_stop_token_inside_the_draft_ends_the_completion(tiny_model: TargetModel, prompt: list[int]):
    free = tiny_model.generate(prompt, BUDGET).new_ids
    stop = free[3]
    plain = tiny_model.generate(prompt, BUDGET, stop_ids=[stop])
    assert plain.new_ids == free[: free.index(stop) + 1] and plain.stopped_by == "stop_token"
    for draft in (free, free[:2], [stop] * BUDGET):
        got = tiny_model.generate(prompt, BUDGET, stop_ids=[stop], draft=draft)
        assert (got.new_ids, got.stopped_by) == (plain.new_ids, "stop_token")


def test_a_right_draft_costs_one_pass_and_a_wrong_one_only_what_follows_its_error(
    tiny_model: TargetModel, prompt: list[int]
):
    right = tiny_model.generate(prompt, BUDGET).new_ids
    with counted_passes(tiny_model) as calls:
        tiny_model.generate(prompt, BUDGET, draft=right)
    assert calls == [len(prompt) + BUDGET]
    wrong_from = 5
    with counted_passes(tiny_model) as calls:
        wrong_late = right[:wrong_from] + drafts(right)["all wrong"][wrong_from:]
        tiny_model.generate(prompt, BUDGET, draft=wrong_late)
    # One pass over prompt + draft; then at most one pass per token after the first wrong one (its
    # correction is read from the first pass's logits, and a later pass may also confirm guessed tokens).
    assert calls[0] == len(prompt) + BUDGET
    assert 1 <= len(calls) <= 1 + BUDGET - wrong_from - 1
    with counted_passes(tiny_model) as calls:
        tiny_model.generate(prompt, BUDGET)
    assert len(calls) == BUDGET  # plain greedy decoding: the prompt, then one pass per further token


def test_a_draft_with_ids_outside_the_vocabulary_is_refused(tiny_model: TargetModel, prompt: list[int]):
    with pytest.raises(InvalidInput, match="draft"):
        tiny_model.generate(prompt, 4, draft=[tiny_model.info.vocab_size])


def test_propose_realigns_with_the_draft_after_a_difference_then_looks_in_the_prompt():
    draft = [10, 11, 12, 13, 14, 15, 16]
    # The completion so far replaced 12 by 99 and went on with 13: guess what followed 13 in the draft.
    assert propose([10, 11, 99, 13], [draft], limit=3) == [14, 15, 16]
    # The longest matching tail wins: (11, 12) occurs only in the second source, 12 alone in the first.
    assert propose([11, 12], [[12, 7, 8], [11, 12, 5, 6]]) == [5, 6]
    # The last occurrence is the one followed; a tail at the very end of a source has nothing after it.
    assert propose([4], [[4, 1, 4, 2, 4]]) == [2, 4]
    assert propose([4], [[1, 4]]) == [] and propose([], [draft]) == []
