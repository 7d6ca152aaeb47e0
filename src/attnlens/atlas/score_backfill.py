"""The `head_scores` job: compute the relational head-type scores of inferences stored before they existed
(or under an older definition). Raw attention is not stored, so each inference's prompt runs through the
model again (one forward pass, no decoding), a few at a time on the worker's model thread.

Resumable and idempotent: an inference is done exactly when its `head_scores_version` is current, and each
is written in its own transaction; a killed job restarted redoes only what was not committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from attnlens.atlas.jobs import JobCancelled, JobContext, run_here
from attnlens.atlas.patterns import pattern_stats
from attnlens.contracts.head_scores import RELATIONAL_SCORE_NAMES
from attnlens.contracts.jobs import job_model
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef
from attnlens.mining.token_relations import prompt_relations
from attnlens.model import TargetModel
from attnlens.store import Store
from attnlens.store.head_scores import count_without_scores, inferences_without_scores, save_relational_scores
from attnlens.store.inferences import get_inference, prompt_ids_of

BATCH = 4  # prompts per forward pass (atlas windows share one length, so they batch without padding)


@dataclass
class BackfillReport:
    model: str
    scored: int = 0
    remaining: int = 0
    seconds: float = 0.0
    cancelled: bool = False


def relational_scores_of(
    model: TargetModel, prompts: Sequence[Sequence[int]]
) -> list[dict[HeadRef, dict[str, float | None]]]:
    """Per prompt, head -> relational score (None where it does not apply), from one forward pass."""
    capture = model.capture(prompts)
    n_layers, n_heads = model.info.n_layers, model.info.n_heads
    out = []
    for index, prompt in enumerate(prompts):
        pattern = capture.pattern(index)  # (layer, head, q, k)
        stats = pattern_stats(
            pattern.reshape(n_layers * n_heads, *pattern.shape[-2:]),
            prompt_relations(model.tokenizer, prompt),
        )
        columns = {name: stats.column(name) for name in RELATIONAL_SCORE_NAMES}
        out.append(
            {
                HeadRef(*divmod(i, n_heads)): {
                    name: None if column is None else float(column[i]) for name, column in columns.items()
                }
                for i in range(n_layers * n_heads)
            }
        )
    return out


def backfill_head_scores(
    store: Store,
    model: TargetModel,
    *,
    limit: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    run_model: Callable[..., Any] = run_here,
) -> BackfillReport:
    """Score every inference of the served model that lacks current scores (at most `limit`)."""
    start = time.perf_counter()
    report = BackfillReport(model=model.info.name)
    with store.session() as session:
        todo = inferences_without_scores(session, model.info.name, limit)
    for first in range(0, len(todo), BATCH):
        if should_stop is not None and should_stop():
            report.cancelled = True
            break
        ids = todo[first : first + BATCH]
        with store.session() as session:
            found = [(i, get_inference(session, i)) for i in ids]
            prompts = [(i, prompt_ids_of(row)) for i, row in found if row is not None]
        scores = run_model(relational_scores_of, model, [p for _, p in prompts])
        for (inference_id, _), per_head in zip(prompts, scores, strict=True):
            report.scored += save_relational_scores(store, inference_id, per_head)
        if progress is not None:
            done = min(first + BATCH, len(todo))
            progress(done, len(todo), f"scored {done} of {len(todo)} inferences")
    with store.session() as session:
        report.remaining = count_without_scores(session, model.info.name)[0]
    report.seconds = time.perf_counter() - start
    return report


def run_head_scores(ctx: JobContext) -> dict[str, Any]:
    """The job: backfill the served model's inferences (`limit` optional)."""
    model = ctx.models.model
    wanted = job_model(ctx.job.parameters, model.info.name)
    if wanted != model.info.name:
        raise InvalidInput(f"this worker serves {model.info.name!r}, not {wanted!r}; start one that does.")
    limit = ctx.job.parameters.get("limit")
    report = backfill_head_scores(
        ctx.store,
        model,
        limit=int(limit) if limit is not None else None,
        progress=lambda done, total, message: ctx.progress(done, total, message),
        should_stop=ctx.should_stop,
        run_model=ctx.run_model,
    )
    if report.cancelled:
        raise JobCancelled()
    return asdict(report)
