"""Greedy decoding from a filled KV cache, and greedy decoding that checks a draft continuation first.

Decoding one token on a CPU reads every weight of the model once, so a 16-token completion of SmolLM2 is
about 15 weight reads after the prompt's pass (docs/benchmarks.md). When a good guess of the completion is
at hand (the completion the build stored for an inference; the un-ablated completion when ablating
heads, which usually changes few tokens), `generate_from_draft` runs the prompt and the whole guess in one
pass, keeps the longest prefix of the guess that greedy decoding would have produced itself, and decodes
on from there. The result is the greedy completion whatever the draft holds: a wrong draft costs only the
tokens after its first wrong one. (A pass over many positions sums in another order than one position at a
time, so in float arithmetic a near-tie between two tokens can resolve either way, as it can between a
batched and an unbatched run; docs/benchmarks.md measures how often the two paths agree.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def continue_greedy(
    model: PreTrainedModel,
    cache: Any,
    last_logits: Float[torch.Tensor, "batch vocab"],
    width: int,
    budgets: Sequence[int],
    stops: set[int],
) -> list[list[int]]:
    """Greedy decoding of equal-length sequences whose first `width` tokens fill `cache`; the first new
    token of each is the argmax of `last_logits`. Each sequence stops at a stop token (kept) or its budget."""
    batch = len(budgets)
    device = model.device
    token = last_logits.argmax(-1)  # (batch,)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    active = [n > 0 for n in budgets]
    for step in range(max(budgets)):
        for i in range(batch):
            if active[i]:
                outputs[i].append(int(token[i]))
                if int(token[i]) in stops or len(outputs[i]) >= budgets[i]:
                    active[i] = False
        if not any(active) or step == max(budgets) - 1:
            break
        mask = torch.ones((batch, width + step + 1), dtype=torch.long, device=device)
        out = model(
            input_ids=token[:, None].to(device),
            attention_mask=mask,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        token = out.logits[:, -1].float().argmax(-1)
    return outputs


LOOKAHEAD = 8  # draft tokens checked per pass after the first: still about one weight read on a CPU
MAX_NGRAM = 3


def propose(generated: Sequence[int], sources: Sequence[Sequence[int]], limit: int = LOOKAHEAD) -> list[int]:
    """A guess of the tokens after `generated`: where its last n tokens (n = 3, 2, 1) last occur in a source
    (searched in order), the tokens that follow them there; empty when none occur anywhere."""
    for n in range(min(MAX_NGRAM, len(generated)), 0, -1):
        tail = list(generated[-n:])
        for source in sources:
            for start in range(len(source) - n - 1, -1, -1):
                if list(source[start : start + n]) == tail:
                    return list(source[start + n : start + n + limit])
    return []


def generate_from_draft(
    model: PreTrainedModel,
    prompt_ids: Sequence[int],
    draft_ids: Sequence[int],
    max_new_tokens: int,
    stops: set[int],
) -> tuple[list[int], Float[torch.Tensor, " vocab"]]:
    """The greedy completion of `prompt_ids` (at most `max_new_tokens`, ending at a stop token) and the
    next-token logits at the prompt's end (float32, CPU).

    The first pass runs the prompt and `draft_ids`; each later pass runs the last new token and a guess of
    what follows it (`propose`: from the draft, re-aligned after a difference, then from the prompt and
    the completion so far). Every pass keeps the guessed tokens that greedy decoding would have chosen and
    adds the one it chooses after them, so each pass yields at least one token."""
    device = model.device
    new: list[int] = []
    cache = None
    width = 0  # tokens in the cache
    feed = list(prompt_ids)
    guess = list(draft_ids[:max_new_tokens])
    first_logits: torch.Tensor | None = None
    while True:
        ids = torch.tensor([feed + guess], dtype=torch.long, device=device)  # (1, fed + guessed)
        mask = torch.ones((1, width + ids.shape[1]), dtype=torch.long, device=device)
        out = model(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True,
                    logits_to_keep=len(guess) + 1)  # fmt: skip
        cache = out.cache
        logits = out.logits[0].float()  # (guess + 1, vocab): row i follows guess[:i]
        if first_logits is None:
            first_logits = logits[0].cpu()
        chosen = logits.argmax(-1).tolist()
        kept = 0
        for token in chosen:
            new.append(token)
            if token in stops or len(new) >= max_new_tokens:
                return new, first_logits
            if kept == len(guess) or token != guess[kept]:
                break
            kept += 1
        # The cache holds the fed tokens and the whole guess; only its first `kept` tokens were right.
        width += len(feed) + len(guess)
        if len(guess) > kept:
            cache.crop(kept - len(guess))
            width -= len(guess) - kept
        feed = [new[-1]]
        # This pass adds its guess and one token more; guess no further than the budget allows.
        guess = propose(new, [draft_ids, list(prompt_ids) + new])[: max_new_tokens - len(new) - 1]
