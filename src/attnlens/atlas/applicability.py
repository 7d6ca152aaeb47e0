"""Whether a predictor's measured (cross-validated) accuracy applies to a new input (`applicability`;
every `Prediction` says so). The accuracy was measured on atlas rows; it applies to an input only when the
input is like them:

1. **window length**: atlas windows are all exactly `context_tokens` long (mining makes every prompt that
   long); the predictor records the median prompt length of its rows as `parameters["window_tokens"]`
   (older predictors: `settings.mining.context_tokens`). A prompt of another length (a short paste, whose
   pattern is zero-padded to AP-MAE's input) is out of distribution: no atlas row looked like it.
2. **embedding space**: the predictor's clustering was built on the served model's patterns embedded by
   the worker's AP-MAE checkpoint (`Clustering.embedder` equals `runtime.embedder_name`).
3. **cluster ids** (cluster-id predictor kinds only): the predictor was measured on HDBSCAN's labels, a new
   input gets kNN-voted ids. The clustering job measures how often the vote agrees with HDBSCAN on
   held-out atlas rows (`Clustering.parameters["knn_agreement"]`, `attnlens.atlas.clustering`); the
   accuracy applies only when the lower end of that rate's 95% interval is at least
   `KNN_AGREEMENT_FLOOR` (below it, more than one head in ten would get another id than the rows the
   accuracy was measured on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The least kNN agreement (lower end of its 95% interval) under which a cluster-id predictor's accuracy
# is taken to apply to kNN-placed inputs.
KNN_AGREEMENT_FLOOR = 0.9


@dataclass(frozen=True)
class Applicability:
    """Whether a predictor's measured accuracy applies to an input, and why (a sentence)."""

    applies: bool
    reason: str


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def applicability(
    *,
    prompt_tokens: int | None,
    window_tokens: int,
    model_name: str,
    predictor_model: str,
    embedder: str | None,
    predictor_embedder: str | None,
    cluster_ids: bool,
    knn_agreement: Mapping[str, Any] | None,
) -> Applicability:
    """Whether the accuracy a predictor measured on atlas rows applies to a new input (module docstring):
    the same window length, the same model and AP-MAE checkpoint, and, for cluster-id predictors, a kNN
    vote that agrees with the clustering's labels (`knn_agreement`: the clustering's stored measurement,
    None when it has none)."""
    against: list[str] = []
    if prompt_tokens is None:
        against.append(
            f"measured on {window_tokens}-token atlas windows; this input's prompt length is not known"
        )
    elif prompt_tokens != window_tokens:
        against.append(
            f"measured on {window_tokens}-token atlas windows; this paste's prompt is {prompt_tokens} tokens"
        )
    if predictor_model != model_name:
        against.append(f"trained on {predictor_model}'s patterns, not on the served model {model_name}'s")
    if predictor_embedder is None:
        against.append("the AP-MAE checkpoint it was trained on is not recorded")
    elif embedder is None:
        against.append(
            f"trained on embeddings of AP-MAE checkpoint {predictor_embedder}; this input's is not known"
        )
    elif predictor_embedder != embedder:
        against.append(
            f"trained on embeddings of AP-MAE checkpoint {predictor_embedder}, not of the worker's {embedder}"
        )
    measured = (knn_agreement or {}).get("overall") or {}
    agreement = ""
    if cluster_ids:
        if measured.get("rate") is None:
            against.append(
                "its cluster ids come from a kNN vote whose agreement with the clustering's labels was not "
                "measured (re-run `attnlens atlas cluster`)"
            )
        else:
            figure = f"{_pct(measured['rate'])} [{_pct(measured['low'])}, {_pct(measured['high'])}]"
            if measured["low"] < KNN_AGREEMENT_FLOOR:
                against.append(
                    f"its cluster ids come from a kNN vote that agrees with the clustering's labels on only "
                    f"{figure} of held-out atlas rows (at least {_pct(KNN_AGREEMENT_FLOOR)} needed)"
                )
            agreement = (
                f"; cluster ids by kNN agree with the clustering's labels on {figure} of held-out atlas rows"
            )
    if against:
        return Applicability(False, "; ".join(against) + ", so the measured accuracy does not apply to it")
    return Applicability(
        True,
        f"measured on windows like this one ({window_tokens} tokens, same model and AP-MAE checkpoint)"
        + agreement,
    )
