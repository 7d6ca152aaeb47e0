"""Population ablation experiments: which heads to ablate, and what the ablation did.

Selection rules (from a mean SHAP value per head, in log-odds of "correct"):
- `top_positive`: the n heads with the largest mean above `eps` (they push towards "correct");
- `top_negative`: the n heads with the most negative mean below `-eps` (they push towards "incorrect");
- `neutral`: n heads drawn WITHOUT replacement among those with |mean| <= eps (the reference code drew
  with replacement, so a head could be "ablated" twice and fewer distinct heads were ablated than said);
- `random`: n heads drawn without replacement among all heads.
Every rule returns at most n heads, fewer when its pool is smaller; `HeadSelection` keeps both numbers so a
shortfall is visible rather than silent. Ties are broken by head name, so selections are reproducible.

Statistics compare each scenario's correctness before and after (paired): accuracies, their change, and
the incorrect->correct and correct->incorrect flip counts, each with a percentile-bootstrap 95% interval
over scenarios.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from attnlens.analysis.stats import Interval, bootstrap_intervals
from attnlens.contracts.jobs import SELECTION_RULES, SelectionRule
from attnlens.errors import InsufficientData, InvalidInput
from attnlens.heads import HeadRef


@dataclass(frozen=True)
class HeadSelection:
    """The heads a rule chose; `len(heads) < requested` when the rule's pool was too small."""

    rule: SelectionRule
    requested: int
    heads: tuple[HeadRef, ...]


def select_heads(
    mean_shap: Mapping[HeadRef, float], rule: SelectionRule, n: int, *, eps: float, seed: int
) -> HeadSelection:
    """Choose up to `n` heads by `rule` from per-head mean SHAP values."""
    if n < 0:
        raise InvalidInput(f"number of heads must be at least 0, got {n}.")
    if rule not in SELECTION_RULES:
        raise InvalidInput(f"unknown selection rule {rule!r}; choose one of {', '.join(SELECTION_RULES)}.")
    names = sorted(mean_shap, key=lambda h: (h.layer, h.head))
    values = np.array([mean_shap[h] for h in names], dtype=np.float64)
    if rule == "top_positive":
        pool = [i for i in np.argsort(-values, kind="stable") if values[i] > eps]
        chosen = pool[:n]
    elif rule == "top_negative":
        pool = [i for i in np.argsort(values, kind="stable") if values[i] < -eps]
        chosen = pool[:n]
    else:
        drawn_from = np.flatnonzero(np.abs(values) <= eps) if rule == "neutral" else np.arange(len(names))
        rng = np.random.default_rng(seed)
        chosen = rng.choice(drawn_from, size=min(n, len(drawn_from)), replace=False).tolist()
    return HeadSelection(rule=rule, requested=n, heads=tuple(names[i] for i in chosen))


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
    """Accuracies, change and flip counts, each with a percentile-bootstrap 95% interval (scenarios are
    resampled in pairs, so the interval of the change reflects the pairing)."""
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
        statistics, len(before), resamples=resamples, seed=seed
    )
    return AblationStatistics(len(before), base, ablated, change, i2c, c2i)
