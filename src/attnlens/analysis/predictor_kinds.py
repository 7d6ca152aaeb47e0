"""The registry of correctness-predictor kinds. Adding a kind is one module that defines its predictor
class and one `register_predictor_kind(...)` call; training, storage, prediction, the API and the CLI all
dispatch through here (a test registers a toy kind and sees it trained, stored and listed).

A predictor object, whatever its kind, has `kind: str`, `heads: tuple[HeadRef, ...]` and
`predict_proba(features) -> (rows,) P(correct)`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from attnlens.config import AnalysisSettings
from attnlens.contracts.predictors import PredictorKindSpec
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef


class Predictor(Protocol):
    """What every predictor kind's model offers."""

    @property
    def kind(self) -> str: ...

    @property
    def heads(self) -> tuple[HeadRef, ...]: ...

    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class PredictorKindImpl:
    """How to fit, explain and (de)serialise one kind.

    - `fit_fold(x, y, heads, settings, seed)`: fit on one training fold; returns the predictor and the
      boosting rounds it settled on (None for kinds without rounds).
    - `fit_final(x, y, heads, settings, rounds)`: fit on every row, with the folds' rounds if any.
    - `shap(predictor, x)`: (rows, head) contributions to the log-odds of "correct", and the expected value.
    - `save(predictor, archive) -> meta` writes the kind's files into the zip; `load(meta, archive, heads)`.
    """

    spec: PredictorKindSpec
    fit_fold: Callable[
        [np.ndarray, np.ndarray, tuple[HeadRef, ...], AnalysisSettings, int], tuple[Any, int | None]
    ]
    fit_final: Callable[[np.ndarray, np.ndarray, tuple[HeadRef, ...], AnalysisSettings, int | None], Any]
    shap: Callable[[Any, np.ndarray], tuple[np.ndarray, float]]
    save: Callable[[Any, zipfile.ZipFile], dict[str, Any]]
    load: Callable[[dict[str, Any], zipfile.ZipFile, tuple[HeadRef, ...]], Any]

    @property
    def name(self) -> str:
        return self.spec.name

    def check_features(self, features: np.ndarray, n_heads: int) -> None:
        expected_ndim = 2 if self.spec.features == "cluster_ids" else 3
        if features.ndim != expected_ndim or features.shape[1] != n_heads:
            shape = "(rows, heads)" if expected_ndim == 2 else "(rows, heads, dim)"
            raise InvalidInput(
                f"{self.name} needs features of shape {shape} with {n_heads} heads, got {features.shape}."
            )


_KINDS: dict[str, PredictorKindImpl] = {}


def register_predictor_kind(impl: PredictorKindImpl) -> PredictorKindImpl:
    """Add a kind (a name registered twice is an error: kinds are stored by name)."""
    if impl.name in _KINDS and _KINDS[impl.name] is not impl:
        raise InvalidInput(f"predictor kind {impl.name!r} is already registered.")
    _KINDS[impl.name] = impl
    return impl


def unregister_predictor_kind(name: str) -> None:
    """Remove a kind (tests that register a toy kind clean up with this)."""
    _KINDS.pop(name, None)


def predictor_kinds() -> tuple[str, ...]:
    """Registered kind names in registration order (the built-ins first: the `attnlens.analysis` package
    imports `kind_catboost` and `kind_embedding_pca`, so they are registered before any lookup)."""
    return tuple(_KINDS)


def predictor_kind(name: str) -> PredictorKindImpl:
    """The implementation of a kind; `InvalidInput` naming the known ones otherwise."""
    if name not in _KINDS:
        raise InvalidInput(f"unknown predictor kind {name!r}; choose one of {', '.join(_KINDS)}.")
    return _KINDS[name]
