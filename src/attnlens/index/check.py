"""`attnlens index check`: does every space's index agree with the database it was built from?"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from attnlens.errors import StoreError
from attnlens.index.space_index import SpaceIndex
from attnlens.index.spaces import IndexSpace
from attnlens.store.engine import Store
from attnlens.store.index_rows import space_embedding_dims, space_inferences, space_pattern_ids
from attnlens.store.patterns import load_embeddings


class HeldIndexes(Protocol):
    """What the check reads of `PatternIndex` (named here so this module does not import that one, which
    imports this one)."""

    folder: Path

    @property
    def legacy_path(self) -> Path: ...

    def spaces(self) -> list[IndexSpace]: ...

    def space(self, space: IndexSpace) -> SpaceIndex | None: ...


# Exact (flat) indexes keep their vectors: compare this many of them per space with the database's.
VECTORS_TO_COMPARE = 200
# float16 storage changes a unit vector's direction by far less than this.
MIN_COSINE = 0.999


@dataclass
class SpaceCheck:
    """What differs between one space's index (main + delta) and the database (nothing, when `ok`)."""

    space: IndexSpace
    kind: str = "empty"
    index_count: int = 0
    delta_count: int = 0
    database_count: int = 0
    index_dim: int | None = None
    database_dims: list[int] = field(default_factory=list)
    only_in_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    only_in_database: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vectors_compared: int = 0
    vectors_differing: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        return (
            f"{self.space}: {self.kind}, {self.index_count} vectors ({self.delta_count} in the delta), "
            f"dim {self.index_dim}; database {self.database_count} head patterns, dim "
            f"{self.database_dims or '-'}; {self.vectors_compared} stored vectors compared"
        )


@dataclass
class IndexCheckReport:
    """Every space's check, and the problems that belong to no one space."""

    path: Path
    spaces: list[SpaceCheck] = field(default_factory=list)
    general: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [*self.general, *(f"{c.space}: {p}" for c in self.spaces for p in c.problems)]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def index_count(self) -> int:
        return sum(c.index_count for c in self.spaces)

    @property
    def database_count(self) -> int:
        return sum(c.database_count for c in self.spaces)

    @property
    def only_in_index(self) -> np.ndarray:
        return np.sort(np.concatenate([np.zeros(0, np.int64), *(c.only_in_index for c in self.spaces)]))

    @property
    def only_in_database(self) -> np.ndarray:
        return np.sort(np.concatenate([np.zeros(0, np.int64), *(c.only_in_database for c in self.spaces)]))

    @property
    def vectors_compared(self) -> int:
        return sum(c.vectors_compared for c in self.spaces)

    @property
    def vectors_differing(self) -> list[int]:
        return [i for c in self.spaces for i in c.vectors_differing]

    def summary(self) -> str:
        head = [
            f"index {self.path}: {len(self.spaces)} embedding spaces, {self.index_count} vectors; "
            f"database {self.database_count} head patterns",
            *(f"  {c.line()}" for c in self.spaces),
        ]
        if self.ok:
            return "\n".join([*head, "OK: the index matches the database."])
        return "\n".join([*head, *(f"MISMATCH: {p}" for p in self.problems), "Fix: attnlens index rebuild"])


def _sample(ids: np.ndarray, n: int) -> np.ndarray:
    if len(ids) <= n:
        return ids
    return np.sort(np.random.default_rng(0).choice(ids, size=n, replace=False))


def _ids_text(ids: np.ndarray) -> str:
    shown = ", ".join(str(i) for i in ids[:10])
    return f"{len(ids)} ({shown}{', ...' if len(ids) > 10 else ''})"


def _repeated(ids: np.ndarray) -> int:
    return len(ids) - len(np.unique(ids))


def compare_with_database(index: HeldIndexes, store: Store) -> IndexCheckReport:
    report = IndexCheckReport(path=index.folder)
    if index.legacy_path.exists():
        report.general.append(
            f"{index.legacy_path} is an index of the old single-file format, which mixes embedding spaces"
        )
    with store.session() as session:
        in_database = {IndexSpace(model, embedder) for model, embedder in space_inferences(session)}
    for space in sorted(in_database | set(index.spaces())):
        report.spaces.append(_check_space(space, index.space(space), store))
    return report


def _check_space(space: IndexSpace, held: SpaceIndex | None, store: Store) -> SpaceCheck:
    check = SpaceCheck(space)
    with store.session() as session:
        db_ids = space_pattern_ids(session, space.model, space.embedder)
        check.database_dims = space_embedding_dims(session, space.model, space.embedder)
    check.database_count = len(db_ids)
    if len(check.database_dims) > 1:
        check.problems.append(
            f"the database holds embeddings of several sizes {check.database_dims} (mixed AP-MAE checkpoints "
            "under one name?)"
        )
    if held is None:
        check.only_in_database = db_ids
        if len(db_ids):
            check.problems.append(
                f"there is no index file for this space, but the database has {len(db_ids)} of its head "
                "patterns"
            )
        return check
    try:
        main_ids, delta_ids = held.main_ids(), held.delta_ids()
    except StoreError as exc:  # a missing or torn main file
        check.problems.append(exc.message)
        check.only_in_database = db_ids
        return check
    check.kind, check.index_dim = held.kind, held.dim
    check.index_count, check.delta_count = len(main_ids) + len(delta_ids), len(delta_ids)
    index_ids = np.union1d(main_ids, delta_ids)
    check.only_in_index = np.setdiff1d(index_ids, db_ids)
    check.only_in_database = np.setdiff1d(db_ids, index_ids)
    twice = _repeated(main_ids) + _repeated(delta_ids) + len(np.intersect1d(main_ids, delta_ids))
    if twice:
        check.problems.append(f"{twice} ids appear twice in the index (main and delta)")
    if len(check.only_in_database):
        check.problems.append(f"head patterns missing from the index: {_ids_text(check.only_in_database)}")
    if len(check.only_in_index):
        check.problems.append(
            f"index ids with no head pattern of this space in the database: {_ids_text(check.only_in_index)}"
        )
    if check.index_dim is not None and check.database_dims and check.index_dim not in check.database_dims:
        check.problems.append(
            f"the index holds {check.index_dim}-d vectors, the database {check.database_dims}-d embeddings"
        )
    if check.index_dim in check.database_dims:
        exact = delta_ids if held.kind != "flat" else index_ids
        _compare_vectors(check, held, _sample(np.intersect1d(exact, db_ids), VECTORS_TO_COMPARE), store)
    return check


def _compare_vectors(check: SpaceCheck, held: SpaceIndex, ids: np.ndarray, store: Store) -> None:
    if not len(ids):
        return
    with store.session() as session:
        expected = load_embeddings(session, ids)
    stored = np.stack([held.reconstruct(int(i)) for i in ids])
    faiss.normalize_L2(expected)
    stored = stored / np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
    cosine = np.einsum("nd,nd->n", stored, expected)
    check.vectors_compared = len(ids)
    check.vectors_differing = [int(i) for i in ids[cosine < MIN_COSINE]]
    if check.vectors_differing:
        check.problems.append(
            f"{len(check.vectors_differing)} of {len(ids)} sampled vectors differ from the database's "
            f"embeddings (ids {check.vectors_differing[:10]})"
        )
