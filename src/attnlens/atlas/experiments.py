"""Population ablation experiments: ablate n heads chosen by a rule over held-out scenarios of a task and
measure what happens to first-token accuracy (the paper's intervention, with its bugs fixed).

Held-out means fresh: scenarios are mined from the atlas's corpus with another seed, and any hole the atlas
already holds is dropped, so neither the predictor that ranked the heads nor the clusters saw them.
Rules `top_positive`, `top_negative` and `neutral` rank heads by the mean SHAP value of the task's trained
cluster predictor (stored with its evaluation); `random` needs no predictor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from attnlens.analysis.ablation import ablation_statistics, select_heads
from attnlens.analysis.kind_catboost import CLUSTERS_CATBOOST
from attnlens.atlas.jobs import JobCancelled, JobContext, require, run_here
from attnlens.errors import InsufficientData
from attnlens.heads import HeadRef
from attnlens.mining import MiningStats, iter_corpus, mine_scenarios
from attnlens.store import Store
from attnlens.store.analyses import newest_head_importance
from attnlens.store.inferences import scenario_holes

if TYPE_CHECKING:
    from attnlens.mining.scenarios import Scenario
    from attnlens.model import TargetModel


HELD_OUT_SEED_OFFSET = 1_000_003
BATCH = 8


def mean_shap_per_head(store: Store, model_name: str, task: str) -> dict[HeadRef, float] | None:
    """Mean SHAP (log-odds of correct) per head from the newest cluster predictor of the task, if any."""
    importance = newest_head_importance(store, model_name, task, CLUSTERS_CATBOOST)
    if importance is None:
        return None
    return {HeadRef.parse(str(h["name"])): float(h["mean_shap"]) for h in importance}


def held_out_scenarios(
    ctx: JobContext, model: TargetModel, task: str, count: int, corpus: str, seed: int
) -> list[Scenario]:
    """Fresh scenarios of `task`: mined with another seed, minus holes already in the atlas."""
    settings = ctx.settings
    taken = scenario_holes(ctx.store, task)
    files = iter_corpus(
        corpus, max_file_bytes=settings.mining.max_file_bytes, stats=MiningStats(), shuffle_seed=seed
    )
    mined = mine_scenarios(
        files, tokenizer=model.tokenizer, fim=model.info.fim, tasks=[task], per_task=count + len(taken),
        context_tokens=settings.mining.context_tokens, seed=seed,
    )  # fmt: skip
    out = []
    for s in mined:
        if (s.file_sha256, s.hole_start, s.hole_end) not in taken:
            out.append(s)
        if len(out) == count:
            break
    return out


def first_token_correct(
    model: TargetModel,
    scenarios: list[Scenario],
    heads: Sequence[HeadRef] = (),
    run_model: Callable[..., Any] = run_here,
) -> np.ndarray:
    """Whether the model's greedy first token is each scenario's; `run_model(fn, *args)` runs each batch
    (a job passes `ctx.run_model`, so the ablation hooks never overlap another call)."""
    hits = []
    for start in range(0, len(scenarios), BATCH):
        chunk = scenarios[start : start + BATCH]
        logits = run_model(model.next_token_logits_batch, [s.prompt_ids for s in chunk], ablate=heads)
        hits += [int(row.argmax()) == s.target_ids[0] for row, s in zip(logits, chunk, strict=True)]
    return np.asarray(hits, dtype=bool)


def run_ablation_experiment(ctx: JobContext) -> dict[str, Any]:
    p = ctx.job.parameters
    task, rules, counts = require(p, "task", str), require(p, "rules", list), require(p, "n", list)
    seed = int(p.get("seed", 0))
    model = ctx.models.model
    shap = mean_shap_per_head(ctx.store, model.info.name, task)
    if shap is None and any(r != "random" for r in rules):
        raise InsufficientData(
            f"rules {', '.join(r for r in rules if r != 'random')} rank heads "
            f"by the {task} predictor's SHAP values, "
            "and there is none: run `attnlens predictors train` first, or use only the `random` rule."
        )
    if shap is None:
        shap = {
            HeadRef(layer, h): 0.0 for layer in range(model.info.n_layers) for h in range(model.info.n_heads)
        }
    scenarios = held_out_scenarios(
        ctx, model, task, int(p.get("scenarios", 100)), require(p, "corpus", str), seed + HELD_OUT_SEED_OFFSET
    )
    if len(scenarios) < 2:
        raise InsufficientData(
            f"only {len(scenarios)} held-out {task} scenarios could be mined; use a larger corpus."
        )
    total = len(rules) * len(counts) + 1
    ctx.progress(0, total, f"baseline over {len(scenarios)} held-out scenarios")
    baseline = first_token_correct(model, scenarios, run_model=ctx.run_model)
    rows, step = [], 1
    for rule in rules:
        for n in counts:
            if ctx.should_stop():
                raise JobCancelled()
            chosen = select_heads(shap, rule, n, eps=ctx.settings.analysis.neutral_shap_eps, seed=seed)
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
        "scenarios": len(scenarios),
        "baseline_accuracy": float(baseline.mean()),
        "ranked_by": "mean SHAP of the cluster predictor" if any(r != "random" for r in rules) else None,
        "rows": rows,
    }
