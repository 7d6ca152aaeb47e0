"""Correctness predictors: from one inference's heads to the probability that its completion is correct.

What every kind shares: label checks and serialisation. The kinds themselves are one module each, each
registered in `attnlens.analysis.predictor_kinds` (`kind_catboost`: the paper's CatBoost over cluster ids;
`kind_embedding_pca`: ours, per-head PCA of the embeddings and logistic regression). All predict
P(correct) (class 1 = correct, so positive log-odds and positive SHAP values push towards "correct").

Predictors serialise to bytes (a zip of JSON metadata plus the kind's own files: an .npz without pickles,
CatBoost's .cbm) so they can be stored in a database without the risks of unpickling.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from attnlens.analysis.predictor_kinds import Predictor, predictor_kind
from attnlens.errors import InsufficientData, InvalidInput
from attnlens.heads import HeadRef

FORMAT_NAME = "attnlens-correctness-predictor"
FORMAT_VERSION = 1


def check_labels(correct: np.ndarray, n_rows: int, *, min_per_class: int = 2) -> np.ndarray:
    """Correctness as int 0/1, after checking length and that both classes have enough rows."""
    y = np.asarray(correct)
    if y.shape != (n_rows,):
        raise InvalidInput(f"need one correctness label per row: {n_rows} rows, labels of shape {y.shape}.")
    y = y.astype(np.int64)
    if not np.isin(y, (0, 1)).all():
        raise InvalidInput("correctness labels must be booleans or 0/1.")
    n_correct = int(y.sum())
    if min(n_correct, n_rows - n_correct) < min_per_class:
        raise InsufficientData(
            f"{n_correct} correct and {n_rows - n_correct} incorrect rows; a predictor needs at least "
            f"{min_per_class} of each. Analyse more scenarios of this task."
        )
    return y


def head_names(heads: tuple[HeadRef, ...]) -> list[str]:
    return [h.name for h in heads]


def predictor_to_bytes(predictor: Predictor) -> bytes:
    """A self-describing zip: meta.json plus the kind's own files (arrays.npz without pickles, CatBoost's
    .cbm), so a stored predictor never needs unpickling."""
    impl = predictor_kind(predictor.kind)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        meta: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "kind": predictor.kind,
            "heads": head_names(predictor.heads),
            **impl.save(predictor, archive),
        }
        archive.writestr("meta.json", json.dumps(meta))
    return buffer.getvalue()


def predictor_from_bytes(blob: bytes) -> Predictor:
    """The inverse of `predictor_to_bytes`."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            meta = json.loads(archive.read("meta.json"))
            if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
                raise InvalidInput(
                    f"not an attnlens predictor of version {FORMAT_VERSION} (got {meta.get('format')!r} "
                    f"v{meta.get('version')!r}); retrain the predictor with this version."
                )
            heads = tuple(HeadRef.parse(name) for name in meta["heads"])
            return predictor_kind(meta["kind"]).load(meta, archive, heads)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"stored predictor is damaged ({exc}); retrain it.") from exc
