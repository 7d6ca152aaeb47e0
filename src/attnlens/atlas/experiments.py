"""Population ablation experiments: ablate n heads chosen by a rule over held-out scenarios of a task and
measure what happens to first-token accuracy (the paper's intervention, with its bugs fixed).

Held-out means fresh (`attnlens.atlas.held_out`): mined with another seed, minus the atlas's holes, so
neither the predictor that ranked the heads nor the clusters saw them; `balanced` asks for as many
baseline-correct as baseline-incorrect ones.

Rules `top_positive`, `top_negative` and `neutral` rank heads by the SHAP values of the task's predictor
(the best by CV accuracy, or the `predictor_kind` asked for) over these same held-out scenarios
(`attnlens.analysis.ablation.HeadRanking`); `random` needs no predictor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from attnlens.analysis.ablation import HeadRanking, ablation_statistics, select_heads
from attnlens.atlas.held_out import HELD_OUT_SEED_OFFSET, first_token_correct, held_out_set
from attnlens.atlas.jobs import JobCancelled, JobContext, require
from attnlens.atlas.prediction import best_predictor, explain_rows
from attnlens.atlas.process import process_batch
from attnlens.contracts.jobs import check_head_counts
from attnlens.errors import InsufficientData, InvalidInput
from attnlens.heads import HeadRef

if TYPE_CHECKING:
    from attnlens.mining.scenarios import Scenario


EMBED_BATCH = 4  # scenarios a forward with attention captures and embeds at once (as the build)


def rank_heads_over(ctx: JobContext, task: str, scenarios: list[Scenario], kind: str | None) -> RankedHeads:
    """Rank heads by the task's predictor's SHAP values over the experiment's own scenarios (as the
    method intends: the rows acted on, not the predictor's training rows, over which every head's signed
    mean is about 0). Each scenario runs through the atlas pipeline for its embeddings (on the model
    thread); cluster-id predictors see each head's kNN-voted cluster."""
    runtime = ctx.models
    model, apmae = runtime.model, runtime.apmae
    heads = [HeadRef(layer, h) for layer in range(model.info.n_layers) for h in range(model.info.n_heads)]
    rows: list[dict[HeadRef, np.ndarray]] = []
    for start in range(0, len(scenarios), EMBED_BATCH):
        chunk = scenarios[start : start + EMBED_BATCH]
        for item in ctx.run_model(process_batch, model, apmae.embed_with_errors, chunk):
            rows.append(dict(zip(heads, item.embeddings, strict=True)))  # (layer, head) order
    explained = explain_rows(ctx.settings, ctx.store, model.info.name, task, rows, kind)
    if explained is None:
        raise InsufficientData(f"the {task} predictor of {model.info.name} disappeared; train it again.")
    ranking = HeadRanking.from_shap(explained.heads, explained.values)
    info = explained.info
    described = (
        f"SHAP of predictor {info.name} ({info.kind}, CV accuracy {info.accuracy:.3f} "
        f"[{info.accuracy_low:.3f}, {info.accuracy_high:.3f}]) over this experiment's {ranking.rows} "
        "held-out scenarios: top_positive by mean positive SHAP, top_negative by mean negative SHAP, "
        "neutral by |mean SHAP| <= eps"
    )
    return RankedHeads(ranking, described, info.kind, explained.predictor_id)


@dataclass(frozen=True)
class RankedHeads:
    ranking: HeadRanking
    described: str  # what ranked the heads, on which rows (shown in the UI)
    kind: str | None
    predictor_id: int | None


def run_ablation_experiment(ctx: JobContext) -> dict[str, Any]:
    p = ctx.job.parameters
    task, rules, counts = require(p, "task", str), require(p, "rules", list), require(p, "n", list)
    seed = int(p.get("seed", 0))
    model = ctx.models.model
    # The API refused these at queue time; the served model may have changed since.
    check_head_counts(counts, model.info.n_layers, model.info.n_heads, model.info.name)
    kind = p.get("predictor_kind")
    ranked_rules = [r for r in rules if r != "random"]
    if ranked_rules and best_predictor(ctx.store, model.info.name, task, kind=kind) is None:
        raise InsufficientData(
            f"rules {', '.join(ranked_rules)} rank heads by the {task} predictor's SHAP values, and there is "
            f"none{f' of kind {kind}' if kind else ''}: run `attnlens predictors train` first, or use only "
            "the `random` rule."
        )
    balanced = p.get("balanced", False)  # absent in jobs queued before it existed
    if not isinstance(balanced, bool):
        raise InvalidInput(f"job parameter 'balanced' must be true or false, got {balanced!r}.")
    total = len(rules) * len(counts) + 1 + (1 if ranked_rules else 0)
    corpus, count = require(p, "corpus", str), int(p.get("scenarios", 100))
    held = held_out_set(
        ctx, model, task, count, corpus, seed + HELD_OUT_SEED_OFFSET, balanced=balanced,
        report=lambda message: ctx.progress(0, total, message),
    )  # fmt: skip
    # The baseline measured while choosing the set (balancing needs it), reused for every row.
    scenarios, baseline = held.scenarios, held.baseline
    if ranked_rules:
        ctx.progress(1, total, f"ranking heads by SHAP over the {len(scenarios)} held-out scenarios")
        ranked = rank_heads_over(ctx, task, scenarios, kind)
    else:
        unranked = {
            HeadRef(layer, h): 0.0 for layer in range(model.info.n_layers) for h in range(model.info.n_heads)
        }
        ranked = RankedHeads(HeadRanking.from_means(unranked), "random: no ranking", None, None)
    rows, step = [], 1 + (1 if ranked_rules else 0)
    for rule in rules:
        for n in counts:
            if ctx.should_stop():
                raise JobCancelled()
            chosen = select_heads(
                ranked.ranking, rule, n, eps=ctx.settings.analysis.neutral_shap_eps, seed=seed
            )
            after = first_token_correct(model, scenarios, chosen.heads, run_model=ctx.run_model)
            stats = ablation_statistics(
                baseline, after, resamples=ctx.settings.analysis.bootstrap_resamples, seed=seed
            )
            rows.append(
                {
                    "rule": rule, "n": n, "n_heads": len(chosen.heads),
                    "heads": [h.name for h in chosen.heads],
                    "accuracy": stats.ablated_accuracy.estimate, "accuracy_low": stats.ablated_accuracy.low,
                    "accuracy_high": stats.ablated_accuracy.high, "change": stats.accuracy_change.estimate,
                    "change_low": stats.accuracy_change.low, "change_high": stats.accuracy_change.high,
                    "i2c": stats.incorrect_to_correct.estimate, "i2c_low": stats.incorrect_to_correct.low,
                    "i2c_high": stats.incorrect_to_correct.high, "c2i": stats.correct_to_incorrect.estimate,
                    "c2i_low": stats.correct_to_incorrect.low, "c2i_high": stats.correct_to_incorrect.high,
                }
            )  # fmt: skip
            step += 1
            ctx.progress(step, total, f"{rule} n={n}: accuracy {stats.ablated_accuracy.estimate:.3f}")
    return {
        "task": task,
        "model": model.info.name,
        "scenarios": len(scenarios),
        "baseline_accuracy": float(baseline.mean()),  # 0.5 for a full balanced set, as measured
        **held.summary(),
        "model_heads": model.info.n_patterns,
        "ranked_by": ranked.described if ranked_rules else None,
        "ranking_kind": ranked.kind,
        "ranking_predictor_id": ranked.predictor_id,
        "ranking": ranked.ranking.top(20) if ranked_rules else [],
        "rows": rows,
    }
