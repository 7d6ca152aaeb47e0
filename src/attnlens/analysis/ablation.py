"""Population ablation experiments: which heads to ablate, and what the ablation did.

Selection rules (from per-head SHAP values in log-odds of "correct", summarised over the rows an
experiment acts on: `HeadRanking`), as the method intends (paper-method.md 4.4):
- `top_positive`: the n heads with the largest mean POSITIVE SHAP (the mean of max(SHAP, 0) over the rows),
  above `eps`: the heads whose pattern pushes these rows towards "correct";
- `top_negative`: the n heads with the most negative mean NEGATIVE SHAP (the mean of min(SHAP, 0)), below
  `-eps`: the heads that push towards "incorrect";
- `neutral`: n heads drawn WITHOUT replacement among those with |signed mean SHAP| <= eps (the reference
  code drew with replacement, so a head could be "ablated" twice and fewer distinct heads were ablated
  than said);
The signed mean alone cannot rank: over the rows a tree model was fitted on it is about 0 for every head,
the head that decides every prediction included (tests/analysis/test_predictors.py shows it), which made
the first version pick near-random heads.
- `random`: n heads drawn without replacement among all heads.
Every rule returns at most n heads, fewer when its pool is smaller; `HeadSelection` keeps both numbers so a
shortfall is visible rather than silent. Ties are broken by head name, so selections are reproducible.

Statistics compare each scenario's correctness before and after (paired): accuracies, their change, and
the incorrect->correct and correct->incorrect flip counts, each with a percentile-bootstrap 95% interval
over scenarios.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from attnlens.analysis.stats import Interval, bootstrap_intervals
from attnlens.contracts.jobs import SELECTION_RULES, SelectionRule
from attnlens.errors import InsufficientData, InvalidInput
from attnlens.heads import HeadRef


@dataclass(frozen=True)
class HeadRanking:
    """Per-head SHAP summaries over the rows an experiment acts on, heads in (layer, head) order."""

    heads: tuple[HeadRef, ...]
    mean_positive: np.ndarray  # (head,) mean of max(SHAP, 0) over the rows
    mean_negative: np.ndarray  # (head,) mean of min(SHAP, 0) over the rows
    mean: np.ndarray  # (head,) signed mean over the rows
    rows: int  # how many rows the means are over

    @classmethod
    def from_shap(cls, heads: Sequence[HeadRef], values: np.ndarray) -> HeadRanking:
        """From (rows, head) SHAP values of the rows the experiment acts on."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != len(heads):
            raise InvalidInput(f"SHAP values must be (rows, {len(heads)} heads), got shape {v.shape}.")
        if len(v) == 0:
            raise InsufficientData("no rows to rank heads over.")
        order = sorted(range(len(heads)), key=lambda j: (heads[j].layer, heads[j].head))
        v = v[:, order]
        return cls(
            heads=tuple(heads[j] for j in order),
            mean_positive=np.clip(v, 0, None).mean(axis=0),
            mean_negative=np.clip(v, None, 0).mean(axis=0),
            mean=v.mean(axis=0),
            rows=len(v),
        )

    @classmethod
    def from_means(cls, mean_shap: Mapping[HeadRef, float]) -> HeadRanking:
        """From one signed mean per head (each row's SHAP taken to be that mean)."""
        heads = sorted(mean_shap, key=lambda h: (h.layer, h.head))
        return cls.from_shap(heads, np.asarray([[mean_shap[h] for h in heads]]))

    def top(self, k: int) -> list[dict[str, float | str]]:
        """The k heads with the largest mean |SHAP| part, for showing what the ranking saw."""
        order = np.argsort(-(self.mean_positive - self.mean_negative), kind="stable")[:k]
        return [
            {
                "name": self.heads[i].name,
                "mean_positive_shap": round(float(self.mean_positive[i]), 6),
                "mean_negative_shap": round(float(self.mean_negative[i]), 6),
                "mean_shap": round(float(self.mean[i]), 6),
            }
            for i in order
        ]


@dataclass(frozen=True)
class HeadSelection:
    """The heads a rule chose; `len(heads) < requested` when the rule's pool was too small."""

    rule: SelectionRule
    requested: int
    heads: tuple[HeadRef, ...]


def select_heads(
    ranking: HeadRanking, rule: SelectionRule, n: int, *, eps: float, seed: int
) -> HeadSelection:
    """Choose up to `n` heads by `rule` from a ranking over the rows the experiment acts on."""
    if n < 0:
        raise InvalidInput(f"number of heads must be at least 0, got {n}.")
    if rule not in SELECTION_RULES:
        raise InvalidInput(f"unknown selection rule {rule!r}; choose one of {', '.join(SELECTION_RULES)}.")
    names = ranking.heads
    if rule == "top_positive":
        values = ranking.mean_positive
        pool = [i for i in np.argsort(-values, kind="stable") if values[i] > eps]
        chosen = pool[:n]
    elif rule == "top_negative":
        values = ranking.mean_negative
        pool = [i for i in np.argsort(values, kind="stable") if values[i] < -eps]
        chosen = pool[:n]
    else:
        if rule == "neutral":
            candidates = np.flatnonzero(np.abs(ranking.mean) <= eps)
        else:
            candidates = np.arange(len(names))
        rng = np.random.default_rng(seed)
        chosen = rng.choice(candidates, size=min(n, len(candidates)), replace=False).tolist()
    return HeadSelection(rule=rule, requested=n, heads=tuple(names[int(i)] for i in chosen))


@dataclass(frozen=True)
class AblationStatistics:
    """Paired before/after correctness over the same scenarios."""

    n_scenarios: int
    baseline_accuracy: Interval
    ablated_accuracy: Interval
    accuracy_change: Interval  # ablated - baseline, in accuracy units (0.136 = +13.6 points)
    incorrect_to_correct: Interval  # count of scenarios that became correct
    correct_to_incorrect: Interval  # count of scenarios that became incorrect


def ablation_statistics(
    baseline_correct: np.ndarray, ablated_correct: np.ndarray, *, resamples: int, seed: int
) -> AblationStatistics:
    """Accuracies, change and flip counts, each with a percentile-bootstrap 95% interval. Scenarios are
    resampled in pairs (the interval of the change reflects the pairing) and within their baseline outcome:
    the held-out set's baseline counts are fixed (by design in a balanced set), so a flip count's interval
    stays within the scenarios that could flip (it read "100 [86, 114]" of 100 baseline-correct before)."""
    before = np.asarray(baseline_correct)
    after = np.asarray(ablated_correct)
    if before.ndim != 1 or before.shape != after.shape:
        raise InvalidInput(
            f"baseline and ablated correctness must be 1-D and of equal length, got {before.shape} and "
            f"{after.shape}."
        )
    if len(before) == 0:
        raise InsufficientData("no scenarios: run the experiment on at least one scenario.")
    if not (np.isin(before, (0, 1)).all() and np.isin(after, (0, 1)).all()):
        raise InvalidInput("correctness must be booleans or 0/1.")
    before = before.astype(np.float64)
    after = after.astype(np.float64)

    def statistics(rows: np.ndarray) -> np.ndarray:  # rows: (resamples + 1, n) -> (resamples + 1, 5)
        b, a = before[rows], after[rows]
        return np.stack(
            [
                b.mean(axis=1),
                a.mean(axis=1),
                a.mean(axis=1) - b.mean(axis=1),
                ((b == 0) & (a == 1)).sum(axis=1),
                ((b == 1) & (a == 0)).sum(axis=1),
            ],
            axis=1,
        )

    base, ablated, change, i2c, c2i = bootstrap_intervals(
        statistics, len(before), resamples=resamples, seed=seed, strata=before
    )
    return AblationStatistics(len(before), base, ablated, change, i2c, c2i)
