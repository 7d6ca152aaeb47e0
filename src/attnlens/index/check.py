"""`attnlens index check`: does the index agree with the database it was built from?"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from attnlens.store.engine import Store
from attnlens.store.patterns import embedding_dims, load_embeddings, pattern_ids

if TYPE_CHECKING:
    from attnlens.index.pattern_index import PatternIndex

# Flat indexes keep exact vectors: compare this many of them with the database's embeddings.
VECTORS_TO_COMPARE = 200
# float16 storage changes a unit vector's direction by far less than this.
MIN_COSINE = 0.999


@dataclass
class IndexCheckReport:
    """What differs between the index and the database (nothing, when `ok`)."""

    path: Path
    kind: str
    index_count: int
    database_count: int
    index_dim: int | None
    database_dims: list[int]
    only_in_index: np.ndarray  # ids in the index with no head_pattern row (sorted)
    only_in_database: np.ndarray  # head_pattern ids missing from the index (sorted)
    vectors_compared: int = 0
    vectors_differing: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = (
            f"index {self.path} ({self.kind}, {self.index_count} vectors, dim {self.index_dim}); "
            f"database {self.database_count} head patterns, dim {self.database_dims or '-'}; "
            f"{self.vectors_compared} stored vectors compared"
        )
        if self.ok:
            return head + "\nOK: the index matches the database."
        return "\n".join([head, *(f"MISMATCH: {p}" for p in self.problems), "Fix: attnlens index rebuild"])


def _sample(ids: np.ndarray, n: int) -> np.ndarray:
    if len(ids) <= n:
        return ids
    return np.sort(np.random.default_rng(0).choice(ids, size=n, replace=False))


def _ids_text(ids: np.ndarray) -> str:
    shown = ", ".join(str(i) for i in ids[:10])
    return f"{len(ids)} ({shown}{', ...' if len(ids) > 10 else ''})"


def compare_with_database(index: PatternIndex, store: Store) -> IndexCheckReport:
    with store.session() as session:
        db_ids = pattern_ids(session)
        dims = embedding_dims(session)
        index_ids = index.ids()
        report = IndexCheckReport(
            path=index.path,
            kind=index.kind,
            index_count=index.count,
            database_count=len(db_ids),
            index_dim=index.dim,
            database_dims=dims,
            only_in_index=np.setdiff1d(index_ids, db_ids),
            only_in_database=np.setdiff1d(db_ids, index_ids),
        )
        if len(db_ids) and index.count == 0 and not index.path.exists():
            report.problems.append(
                f"there is no index file at {index.path}, but the database has head patterns"
            )
        if len(np.unique(index_ids)) != len(index_ids):
            report.problems.append(
                f"{len(index_ids) - len(np.unique(index_ids))} ids appear twice in the index"
            )
        if len(report.only_in_database):
            report.problems.append(
                f"head patterns missing from the index: {_ids_text(report.only_in_database)}"
            )
        if len(report.only_in_index):
            report.problems.append(
                f"index ids with no head pattern in the database: {_ids_text(report.only_in_index)}"
            )
        if len(dims) > 1:
            report.problems.append(
                f"the database holds embeddings of several sizes {dims} (mixed AP-MAE checkpoints?)"
            )
        if index.dim is not None and dims and index.dim not in dims:
            report.problems.append(f"the index holds {index.dim}-d vectors, the database {dims}-d embeddings")
        if index.kind == "flat" and index.dim in dims:
            common = _sample(np.intersect1d(index_ids, db_ids), VECTORS_TO_COMPARE)
            expected = load_embeddings(session, common)
        else:
            common, expected = np.zeros(0, dtype=np.int64), None
    if expected is not None and len(common):
        stored = np.stack([index.reconstruct(int(i)) for i in common])
        faiss.normalize_L2(expected)
        stored = stored / np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
        cosine = np.einsum("nd,nd->n", stored, expected)
        report.vectors_compared = len(common)
        report.vectors_differing = [int(i) for i in common[cosine < MIN_COSINE]]
        if report.vectors_differing:
            report.problems.append(
                f"{len(report.vectors_differing)} of {len(common)} sampled vectors differ from the "
                f"database's embeddings (ids {report.vectors_differing[:10]})"
            )
    return report
