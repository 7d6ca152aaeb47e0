"""Ablation sweep of one inference: zero each head alone, then each whole layer, and measure what each
changes at the hole: the probability of the expected token, the KL divergence of the next-token
distribution from the un-ablated one, and whether the greedy first token flips. Runs as a job (one
forward pass per head and per layer: 300 for SmolLM2, about 0.3 s each on a 2-core CPU), each pass on the
worker's model thread, so interactive calls interleave with it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from attnlens.atlas.intervene import kl_divergence, token_probability
from attnlens.atlas.jobs import JobCancelled, JobContext, require
from attnlens.contracts.results import SweepRow
from attnlens.errors import InvalidInput, NotFound
from attnlens.heads import HeadRef
from attnlens.store.codecs import unpack_token_ids
from attnlens.store.inferences import get_inference, prompt_ids_of

# Progress (and a cancellation check) every this many passes: about 3 s on a 2-core CPU.
PROGRESS_EVERY = 10


def run_head_sweep(ctx: JobContext) -> dict[str, Any]:
    inference_id = require(ctx.job.parameters, "inference_id", int)
    with ctx.store.session() as session:
        inference = get_inference(session, inference_id)
        if inference is None:
            raise NotFound(f"inference {inference_id} no longer exists (deleted after the sweep was queued).")
        prompt = prompt_ids_of(inference)
        scenario = inference.scenario
        target = unpack_token_ids(scenario.target_ids) if scenario is not None else []
        made_with = inference.model_name
    model = ctx.models.model
    info = model.info
    if made_with != info.name:
        raise InvalidInput(
            f"inference {inference_id} was made with {made_with!r}; this worker serves {info.name!r}."
        )
    expected = target[0] if target else None
    targets: list[tuple[str, int, int | None, list[HeadRef]]] = [
        (HeadRef(layer, h).name, layer, h, [HeadRef(layer, h)])
        for layer in range(info.n_layers)
        for h in range(info.n_heads)
    ]
    targets += [
        (f"L{layer}", layer, None, [HeadRef(layer, h) for h in range(info.n_heads)])
        for layer in range(info.n_layers)
    ]
    total = len(targets) + 1
    ctx.progress(0, total, f"un-ablated pass over {len(prompt)} tokens")
    baseline = ctx.run_model(model.next_token_logits, prompt)
    base_top = int(baseline.argmax())
    base_p = None if expected is None else token_probability(baseline, expected)
    rows: list[SweepRow] = []
    for done, (name, layer, head, heads) in enumerate(targets, start=1):
        logits = ctx.run_model(model.next_token_logits, prompt, ablate=heads)
        top = int(logits.argmax())
        p = None if expected is None else token_probability(logits, expected)
        rows.append(
            SweepRow(
                target=name, layer=layer, head=head, p_expected=p,
                delta_p_expected=None if p is None or base_p is None else p - base_p,
                kl=kl_divergence(baseline, logits), top_token_id=top, top_token=model.decode([top]),
                flipped=top != base_top,
            )
        )  # fmt: skip
        if done % PROGRESS_EVERY == 0 or done == len(targets):
            ctx.progress(done + 1, total, f"ablated {done} of {len(targets)} ({name})")
            if ctx.should_stop():
                raise JobCancelled()
    return {
        "inference_id": inference_id,
        "model": info.name,
        "expected_token_id": expected,
        "expected_token": None if expected is None else model.decode([expected]),
        "baseline_p_expected": base_p,
        "baseline_top_token_id": base_top,
        "baseline_top_token": model.decode([base_top]),
        "heads": sum(1 for r in rows if r.head is not None),
        "layers": sum(1 for r in rows if r.head is None),
        "flipped": sum(1 for r in rows if r.flipped),
        "rows": [asdict(r) for r in rows],
    }
