"""The held-out scenarios a population experiment acts on, with their baseline (unablated) correctness.

Held-out means fresh: scenarios are mined from the atlas's corpus with another seed, and any hole the atlas
already holds is dropped, so neither the predictor that ranked the heads nor the clusters saw them.

A balanced set holds as many baseline-correct as baseline-incorrect scenarios. With a skewed baseline (a
small model gets most holes wrong) an ablation has almost nothing to break, so "accuracy barely moved" says
little; half and half gives both flip directions (c->i and i->c) the same room. Balancing needs the
baseline of more candidates than are kept: they are mined in growing rounds, and the baseline measured
there is the one the experiment reports (not measured a second time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from attnlens.atlas.jobs import JobCancelled, JobContext, run_here
from attnlens.config import Settings
from attnlens.contracts.jobs import BALANCED_CANDIDATE_FACTOR, BALANCED_MIN_PER_CLASS
from attnlens.errors import InsufficientData
from attnlens.heads import HeadRef
from attnlens.mining import MiningStats, iter_corpus, mine_scenarios
from attnlens.mining import first_token_correct as correct_at_hole  # the one definition, per scenario
from attnlens.store import Store
from attnlens.store.inferences import scenario_holes

if TYPE_CHECKING:
    from attnlens.mining.scenarios import Scenario
    from attnlens.model import TargetModel

HELD_OUT_SEED_OFFSET = 1_000_003
BATCH = 8


def iter_held_out(
    settings: Settings, store: Store, model: TargetModel, task: str, limit: int, corpus: str, seed: int
) -> Iterator[Scenario]:
    """Up to `limit` fresh scenarios of `task` in mining order, mined lazily (a balanced set stops reading
    the corpus once it has enough); the atlas's holes are read now."""
    taken = scenario_holes(store, task)
    files = iter_corpus(
        corpus, max_file_bytes=settings.mining.max_file_bytes, stats=MiningStats(), shuffle_seed=seed
    )
    mined = mine_scenarios(
        files, tokenizer=model.tokenizer, fim=model.info.fim, tasks=[task], per_task=limit + len(taken),
        context_tokens=settings.mining.context_tokens, seed=seed,
    )  # fmt: skip
    fresh = (s for s in mined if (s.file_sha256, s.hole_start, s.hole_end) not in taken)
    return islice(fresh, limit)


def held_out_scenarios(
    ctx: JobContext, model: TargetModel, task: str, count: int, corpus: str, seed: int
) -> list[Scenario]:
    """Fresh scenarios of `task`: mined with another seed, minus holes already in the atlas."""
    return list(iter_held_out(ctx.settings, ctx.store, model, task, count, corpus, seed))


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
        hits += [correct_at_hole(row, s) for row, s in zip(logits, chunk, strict=True)]
    return np.asarray(hits, dtype=bool)


@dataclass(frozen=True)
class HeldOutSet:
    """The scenarios an experiment acts on and their baseline correctness, measured once."""

    scenarios: list[Scenario]
    baseline: np.ndarray  # bool, one per scenario, in the order of `scenarios`
    balanced: bool
    asked: int  # the scenario count the job asked for
    candidates: int  # held-out scenarios mined and measured to choose these
    shortfall: str | None  # why a balanced set holds fewer than asked (the rarer class ran out)

    def summary(self) -> dict[str, Any]:
        """The result fields that describe the set (beside `scenarios` and `baseline_accuracy`)."""
        correct = int(self.baseline.sum())
        return {
            "balanced": self.balanced,
            "scenarios_asked": self.asked,
            "candidates_measured": self.candidates,
            "n_correct_baseline": correct,
            "n_incorrect_baseline": len(self.baseline) - correct,
            "balance_shortfall": self.shortfall,
        }


def held_out_set(
    ctx: JobContext,
    model: TargetModel,
    task: str,
    count: int,
    corpus: str,
    seed: int,
    *,
    balanced: bool,
    report: Callable[[str], None],
) -> HeldOutSet:
    """`count` held-out scenarios with their baseline; `report(message)` tells how far mining has got."""
    if balanced:
        return _balanced(ctx, model, task, count, corpus, seed, report)
    scenarios = held_out_scenarios(ctx, model, task, count, corpus, seed)
    if len(scenarios) < 2:
        raise InsufficientData(
            f"only {len(scenarios)} held-out {task} scenarios could be mined; use a larger corpus."
        )
    report(f"baseline over {len(scenarios)} held-out scenarios")
    baseline = first_token_correct(model, scenarios, run_model=ctx.run_model)
    return HeldOutSet(scenarios, baseline, False, count, len(scenarios), None)


def _balanced(
    ctx: JobContext,
    model: TargetModel,
    task: str,
    count: int,
    corpus: str,
    seed: int,
    report: Callable[[str], None],
) -> HeldOutSet:
    per_class = count // 2
    cap = BALANCED_CANDIDATE_FACTOR * count
    stream = iter_held_out(ctx.settings, ctx.store, model, task, cap, corpus, seed)
    mined: list[Scenario] = []
    hits: list[bool] = []
    size = count
    while min(sum(hits), len(hits) - sum(hits)) < per_class:
        if ctx.should_stop():
            raise JobCancelled()
        chunk = list(islice(stream, min(size, cap - len(mined))))
        if not chunk:
            break
        mined += chunk
        hits += first_token_correct(model, chunk, run_model=ctx.run_model).tolist()
        # Rounds double: the first (the count asked) often suffices, and a rare class is reached in a few
        # rounds rather than in many small ones.
        size *= 2
        report(
            f"balancing: {len(mined)} held-out scenarios measured, {sum(hits)} correct, "
            f"{len(hits) - sum(hits)} incorrect (want {per_class} of each)"
        )
    correct = [i for i, hit in enumerate(hits) if hit]
    incorrect = [i for i, hit in enumerate(hits) if not hit]
    keep = min(per_class, len(correct), len(incorrect))
    why = "the corpus had no more" if len(mined) < cap else f"{BALANCED_CANDIDATE_FACTOR}x the count: the cap"
    if keep < BALANCED_MIN_PER_CLASS:
        least = BALANCED_MIN_PER_CLASS
        raise InsufficientData(
            f"a balanced experiment needs at least {least} baseline-correct and {least} baseline-incorrect"
            f" held-out {task} scenarios; the {len(mined)} mined ({why}) had "
            f"{len(correct)} correct and {len(incorrect)} incorrect. Use a larger corpus, ask for more "
            "scenarios, pick a task the model gets right (or wrong) more often, or run it unbalanced."
        )
    # The first `keep` of each class, back in mining order: reproducible for a seed, and the kept rows
    # do not depend on how the rounds were cut.
    chosen = sorted(correct[:keep] + incorrect[:keep])
    shortfall = None
    if keep < per_class:
        shortfall = (
            f"asked for {per_class} of each class; the {len(mined)} held-out scenarios mined ({why}) had "
            f"{len(correct)} correct and {len(incorrect)} incorrect, so {keep} of each were kept"
        )
    baseline = np.asarray([hits[i] for i in chosen], dtype=bool)
    return HeldOutSet([mined[i] for i in chosen], baseline, True, count, len(mined), shortfall)
