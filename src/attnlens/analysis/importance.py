"""Head importances: SHAP values of a correctness predictor, one column per head, in log-odds units.

CatBoost's `get_feature_importance(type="ShapValues")` returns (rows, features + 1) with the expected value
in the LAST column. The reference notebook read column 0 as the expected value and `[:, 1:]` as the
features, which credits every head with its neighbour's contribution; here column j is head j.

For the embedding predictor (a logistic regression on standardised per-head PCA scores) SHAP values are
exact and linear: coefficient x standardised score, summed over the head's components; the expected value
is the intercept (the scores have mean 0 on the training rows).

In both cases, per row: sum of head values + expected value = the model's log-odds of "correct".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnlens.analysis.predictor_kinds import Predictor, predictor_kind
from attnlens.heads import HeadRef


@dataclass(frozen=True)
class HeadShap:
    """Per-row, per-head contributions to the log-odds of correctness."""

    heads: tuple[HeadRef, ...]
    values: np.ndarray  # (rows, head) float64
    expected_value: float  # log-odds before any head is known

    def mean_per_head(self, rows: np.ndarray | None = None) -> dict[HeadRef, float]:
        """Signed mean over `rows` (a boolean mask or indices; all rows by default).

        Over the very rows a tree model was trained on, signed means sit near 0 for every head (the
        contributions are centred on that data); average over the rows you intend to act on (e.g. the
        incorrect baseline scenarios of an ablation experiment) for a meaningful direction.
        """
        picked = self.values if rows is None else self.values[rows]
        return dict(zip(self.heads, picked.mean(axis=0).tolist(), strict=True))

    def mean_abs_per_head(self, rows: np.ndarray | None = None) -> dict[HeadRef, float]:
        """Mean |SHAP| over `rows`: how much each head moves predictions, whatever the direction."""
        picked = self.values if rows is None else self.values[rows]
        return dict(zip(self.heads, np.abs(picked).mean(axis=0).tolist(), strict=True))


def head_shap_values(predictor: Predictor, features: np.ndarray) -> HeadShap:
    """SHAP values of `predictor` on `features` (the same layout the predictor takes)."""
    values, expected = predictor_kind(predictor.kind).shap(predictor, features)
    return HeadShap(tuple(predictor.heads), values, expected)
