"""The `pattern_families` job: one global clustering of every head's patterns of a model's analysed atlas
into pattern families (`attnlens.analysis.families`: UMAP + HDBSCAN on a seeded sample, the rest by kNN
vote), each family stored with its summary and every pattern with its family, as a `FamilyRun`.

Progress is counted in patterns: placing them (the fit sample, then the kNN vote in chunks) and then
writing their assignments, 2 x n steps in all. A cancelled job stores nothing; a requeued one starts again
(a fit is one piece), replacing what an earlier attempt left unfinished.

Correctness rates count each completion once (however many of its heads' patterns are members) and leave
out completions without a ground truth and those of control tasks (the `noise` task's targets are random
tokens by design); the atlas's rate over the same completions is stored beside them as the baseline.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from attnlens.atlas.clustering import model_of
from attnlens.atlas.jobs import JobContext
from attnlens.contracts.head_scores import SCORE_NAMES
from attnlens.contracts.tasks import CONTROL_TASKS
from attnlens.store.analysis_rows import choose_selection
from attnlens.store.families import (
    FamilyRow,
    create_family_run,
    delete_family_run,
    load_family_rows,
    mark_run_complete,
    save_families,
    save_family_assignments,
)
from attnlens.store.head_scores import load_score_table

FAMILY_FIELDS = (
    "seed", "family_fit_sample", "family_min_cluster_size", "family_examples", "knn_k", "umap_components",
    "umap_neighbors", "umap_min_dist", "umap_metric", "hdbscan_min_samples", "dedup_jitter",
)  # fmt: skip
_WRITE_CHUNK = 20_000


def _rate(rate: Any) -> dict[str, Any] | None:
    """A `Rate` as stored: {successes, trials, rate, low, high}, or None."""
    if rate is None:
        return None
    return {"successes": rate.successes, "trials": rate.trials, "rate": rate.estimate, "low": rate.low,
            "high": rate.high}  # fmt: skip


def run_pattern_families(ctx: JobContext) -> dict[str, Any]:
    """Find the pattern families of one model's stored patterns and store them with every assignment."""
    from attnlens.analysis.families import (
        NOT_COUNTED,
        RowAttributes,
        completion_rate,
        fit_families,
        summarise_families,
    )

    settings = ctx.settings.analysis
    ctx.progress(0, None, "reading the patterns")
    with ctx.store.session() as session:
        selection = choose_selection(session, model_of(ctx))
        rows = load_family_rows(session, selection)
        table = load_score_table(session, selection.model_name)
    n = len(rows.pattern_ids)
    # The head-type scores of each row (NaN: does not apply, or the completion's scores are not computed).
    at = np.minimum(np.searchsorted(table.pattern_ids, rows.pattern_ids), max(table.n_patterns - 1, 0))
    scored = table.pattern_ids[at] == rows.pattern_ids if table.n_patterns else np.zeros(n, dtype=bool)
    missing = np.full(n, np.nan)
    scores = {
        name: np.where(scored, table.scores[name][at], np.nan) if table.n_patterns else missing
        for name in SCORE_NAMES
    }
    correct = rows.correct.copy()
    correct[np.isin(np.asarray(rows.task), sorted(CONTROL_TASKS))] = NOT_COUNTED
    attributes = RowAttributes(
        layer=rows.layer, head=rows.head, inference=rows.inference, task=rows.task, correct=correct,
        scores=scores, scored=scored,
    )  # fmt: skip

    ctx.progress(0, 2 * n, f"fitting families on {min(n, settings.family_fit_sample):,} of {n:,} patterns")
    fit = fit_families(
        rows.embeddings,
        settings,
        on_progress=lambda done, total: ctx.progress(
            done, 2 * total, f"placed {done:,} of {total:,} patterns"
        ),
        should_stop=ctx.should_stop,
    )
    if fit is None:
        return {"complete": False, "patterns": n}
    summaries = summarise_families(
        rows.embeddings,
        fit.labels,
        attributes,
        metric=settings.umap_metric,
        n_examples=settings.family_examples,
    )
    fitted = np.zeros(n, dtype=bool)
    fitted[fit.fit_rows] = True
    families = [
        FamilyRow(
            label=s.label,
            size=s.size,
            medoid_pattern_id=int(rows.pattern_ids[s.medoid]),
            summary={
                "examples": [int(rows.pattern_ids[i]) for i in s.examples],
                "n_fitted": int(np.sum(fitted[fit.labels == s.label])),
                "n_scored": s.n_scored,
                "scores": {name: asdict(p) for name, p in s.scores.items()},
                "labels": list(s.labels),
                "layers": [[layer, count] for layer, count in s.layers.items()],
                "heads": [[name, count] for name, count in s.heads],
                "n_heads": s.n_heads,
                "tasks": s.tasks,
                "n_inferences": s.n_inferences,
                "correctness": _rate(s.correctness),
            },
        )
        for s in summaries
    ]
    n_inferences, atlas_rate = completion_rate(rows.inference, correct)
    parameters = {name: getattr(settings, name) for name in FAMILY_FIELDS}
    run_id = create_family_run(ctx.store, selection, {**parameters, **selection.to_dict()}, ctx.job.id)
    save_families(ctx.store, run_id, families)
    for start in range(0, n, _WRITE_CHUNK):
        stop = min(n, start + _WRITE_CHUNK)
        labels, shares = fit.labels[start:stop], fit.vote_share[start:stop]
        save_family_assignments(ctx.store, run_id, rows.pattern_ids[start:stop], labels, shares)
        ctx.progress(n + stop, 2 * n, f"stored {stop:,} of {n:,} assignments")
        if ctx.should_stop():
            delete_family_run(ctx.store, run_id)  # a cancelled job is not resumed: leave nothing behind
            return {"complete": False, "patterns": n}
    n_noise = int(np.sum(fit.labels < 0))
    facts = {
        "patterns": n,
        "fitted_on": int(fitted.sum()),
        "families": len(families),
        "noise": n_noise,
        "scored_patterns": int(scored.sum()),
        "inferences": n_inferences,
        "atlas_correctness": _rate(atlas_rate),
        "correctness_leaves_out_tasks": sorted(CONTROL_TASKS),
        "reason": fit.reason,
    }
    mark_run_complete(ctx.store, run_id, **facts)
    ctx.progress(2 * n, 2 * n, f"{len(families)} families found")
    return {
        "family_run_id": run_id,
        **selection.to_dict(),
        **{key: value for key, value in facts.items() if key != "atlas_correctness"},
        "noise_fraction": round(n_noise / n, 4) if n else None,
        "atlas_correct_rate": None if atlas_rate is None else round(atlas_rate.estimate, 4),
    }
