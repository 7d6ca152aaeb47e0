"""The members of one head's clusters with what the cluster panel shows of them: cluster label, the
correctness of the member's inference, its head-type scores and its embedding (for typical examples)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from attnlens.contracts.head_scores import HEAD_SCORES_VERSION, RELATIONAL_SCORE_NAMES, SCORE_NAMES
from attnlens.heads import HeadRef
from attnlens.store.codecs import unpack_embeddings
from attnlens.store.models import MINED, ClusterAssignment, HeadPattern, Inference


@dataclass(frozen=True)
class ClusterMembers:
    """One head's clustered mined patterns, row i of every array about the same pattern."""

    pattern_ids: np.ndarray  # (n,) int64
    labels: np.ndarray  # (n,) int64, -1 = noise
    correct: np.ndarray  # (n,) float64: 1 right first token, 0 wrong, NaN unknown
    scores: dict[str, np.ndarray]  # score -> (n,) float64, NaN = does not apply or not computed
    embeddings: np.ndarray  # (n, dim) float32


def cluster_members(session: Session, clustering_id: int, ref: HeadRef) -> ClusterMembers:
    """Every mined pattern of the head that the clustering labelled. Relational scores of inferences whose
    scores are not computed read as NaN, like those that do not apply; `scores` says which is which only
    only through counts, so callers report medians over the members that have a value."""
    columns = [getattr(HeadPattern, name) for name in SCORE_NAMES]
    rows = session.execute(
        select(
            HeadPattern.id, ClusterAssignment.label, Inference.first_token_correct,
            Inference.head_scores_version, HeadPattern.embedding, *columns,
        )
        .join(ClusterAssignment, ClusterAssignment.head_pattern_id == HeadPattern.id)
        .join(Inference, Inference.id == HeadPattern.inference_id)
        .where(
            ClusterAssignment.clustering_id == clustering_id, HeadPattern.layer == ref.layer,
            HeadPattern.head == ref.head, Inference.source == MINED,
        )
        .order_by(HeadPattern.id)
    ).all()  # fmt: skip
    relational = [name in RELATIONAL_SCORE_NAMES for name in SCORE_NAMES]
    values = np.full((len(rows), len(SCORE_NAMES)), np.nan)
    for i, row in enumerate(rows):
        scored = row[3] == HEAD_SCORES_VERSION
        for j, value in enumerate(row[5:]):
            # A relational value of an unscored inference is unknown: left NaN like "does not apply".
            if value is not None and (scored or not relational[j]):
                values[i, j] = value
    return ClusterMembers(
        pattern_ids=np.array([r[0] for r in rows], dtype=np.int64),
        labels=np.array([r[1] for r in rows], dtype=np.int64),
        correct=np.array([np.nan if r[2] is None else float(r[2]) for r in rows], dtype=np.float64),
        scores={name: values[:, j] for j, name in enumerate(SCORE_NAMES)},
        embeddings=unpack_embeddings([r[4] for r in rows]) if rows else np.zeros((0, 0), np.float32),
    )
