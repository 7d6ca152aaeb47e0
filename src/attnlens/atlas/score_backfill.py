"""The `head_scores` job: compute the relational head-type scores and AP-MAE reconstruction errors of
inferences stored before they existed (or under an older definition). Raw attention is not stored, so each
inference's prompt runs through the model again (one forward pass, no decoding), a few at a time on the
worker's model thread. Reconstruction errors are measured only for inferences embedded by the worker's own
AP-MAE checkpoint (an error from another checkpoint would not compare); the others keep NULL.

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
from attnlens.atlas.process import Embedder
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
    with_errors: int = 0  # of them, those whose reconstruction errors were measured too
    remaining: int = 0
    seconds: float = 0.0
    cancelled: bool = False


@dataclass(frozen=True)
class InferenceScores:
    relational: dict[HeadRef, dict[str, float | None]]  # head -> score -> value (None: does not apply)
    reconstruction_errors: dict[HeadRef, float] | None  # None when not measured


def relational_scores_of(
    model: TargetModel, prompts: Sequence[Sequence[int]], embed: Embedder | None = None
) -> list[InferenceScores]:
    """Per prompt, the relational scores of every head (and, with `embed`, its reconstruction error),
    from one forward pass."""
    capture = model.capture(prompts)
    n_layers, n_heads = model.info.n_layers, model.info.n_heads
    out = []
    for index, prompt in enumerate(prompts):
        pattern = capture.pattern(index)  # (layer, head, q, k)
        heads = pattern.reshape(n_layers * n_heads, *pattern.shape[-2:])
        stats = pattern_stats(heads, prompt_relations(model.tokenizer, prompt))
        columns = {name: stats.column(name) for name in RELATIONAL_SCORE_NAMES}
        refs = [HeadRef(*divmod(i, n_heads)) for i in range(n_layers * n_heads)]
        errors = None
        if embed is not None:
            values = embed(heads)[1].float().cpu().tolist()
            errors = dict(zip(refs, (float(v) for v in values), strict=True))
        relational = {
            ref: {name: None if column is None else float(column[i]) for name, column in columns.items()}
            for i, ref in enumerate(refs)
        }
        out.append(InferenceScores(relational, errors))
    return out


def backfill_head_scores(
    store: Store,
    model: TargetModel,
    *,
    embed: Embedder | None = None,
    embedder: str | None = None,
    limit: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    run_model: Callable[..., Any] = run_here,
) -> BackfillReport:
    """Score every inference of the served model that lacks current scores (at most `limit`); with `embed`
    (AP-MAE's `embed_with_errors`), also measure the reconstruction errors of the inferences whose
    embedder is `embedder`."""
    start = time.perf_counter()
    report = BackfillReport(model=model.info.name)
    with store.session() as session:
        todo = inferences_without_scores(session, model.info.name, limit)
    for first in range(0, len(todo), BATCH):
        if should_stop is not None and should_stop():
            report.cancelled = True
            break
        chunk = todo[first : first + BATCH]
        with store.session() as session:
            found = [(i, made_by, get_inference(session, i)) for i, made_by in chunk]
            prompts = [(i, made_by, prompt_ids_of(row)) for i, made_by, row in found if row is not None]
        # Errors only where they compare: one AP-MAE pass for the whole batch, kept for the matching rows.
        measure = (
            embed if embed is not None and any(made_by == embedder for _, made_by, _ in prompts) else None
        )
        scores = run_model(relational_scores_of, model, [p for _, _, p in prompts], measure)
        for (inference_id, made_by, _), result in zip(prompts, scores, strict=True):
            errors = result.reconstruction_errors if made_by == embedder else None
            report.scored += save_relational_scores(
                store, inference_id, result.relational, reconstruction_errors=errors
            )
            report.with_errors += errors is not None
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
    runtime = ctx.models
    report = backfill_head_scores(
        ctx.store,
        model,
        embed=runtime.apmae.embed_with_errors,
        embedder=runtime.embedder_name,
        limit=int(limit) if limit is not None else None,
        progress=lambda done, total, message: ctx.progress(done, total, message),
        should_stop=ctx.should_stop,
        run_model=ctx.run_model,
    )
    if report.cancelled:
        raise JobCancelled()
    return asdict(report)
