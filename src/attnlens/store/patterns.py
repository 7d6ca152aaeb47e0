"""Writing inferences and their head patterns, and the reads the index and the API need.

Head patterns are written in bulk (a 30x9-head model gives 270 rows per inference) and read back in id
order for index rebuilds; filters (layer, head, task, correctness, model) become SQL over the joined
inference and scenario rows and return head-pattern ids (= FAISS ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from sqlalchemy import Select, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from attnlens.contracts.head_scores import RELATIONAL_SCORE_NAMES
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef
from attnlens.store.codecs import pack_embeddings, pack_thumbnails, pack_token_ids, unpack_embeddings
from attnlens.store.engine import Store
from attnlens.store.models import INFERENCE_SOURCES, MINED, HeadPattern, Inference, Scenario

STAT_COLUMNS = ("entropy", "diagonal_mass", "previous_token_mass", "first_token_mass", "local_mass")
_LOOKUP_CHUNK = 500


def save_inference(
    session: Session,
    *,
    model_name: str,
    scenario_id: int | None = None,
    prompt_ids: Sequence[int] | None = None,
    prompt_text: str | None = None,
    completion_text: str = "",
    completion_ids: Sequence[int] = (),
    first_token_correct: bool | None = None,
    span_correct: bool | None = None,
    expected_token_prob: float | None = None,
    confidence: tuple[float, float, float] | None = None,
    embedder: str | None = None,
    source: str = MINED,
    head_scores_version: int | None = None,
) -> int:
    """Store one model run; returns its id. `prompt_ids` may be left out when the scenario has them.
    `source` is `mined` for the atlas's own rows and `pasted` for pasted code (kept out of analyses).
    `confidence` is (top-1 probability, top-1 minus top-2 margin, entropy in nats) at the hole.
    `head_scores_version` says which definitions its head patterns' relational scores follow (None: not
    computed, so a NULL score means "unknown", not "does not apply")."""
    if scenario_id is None and prompt_ids is None:
        raise InvalidInput("an inference without a scenario needs its prompt_ids.")
    if source not in INFERENCE_SOURCES:
        raise InvalidInput(f"unknown inference source {source!r}; use one of {', '.join(INFERENCE_SOURCES)}.")
    row = Inference(
        scenario_id=scenario_id,
        model_name=model_name,
        prompt_ids=None if prompt_ids is None else pack_token_ids(prompt_ids),
        prompt_text=prompt_text,
        completion_text=completion_text,
        completion_ids=pack_token_ids(completion_ids),
        first_token_correct=first_token_correct,
        span_correct=span_correct,
        expected_token_prob=expected_token_prob,
        top1_prob=None if confidence is None else confidence[0],
        top1_margin=None if confidence is None else confidence[1],
        next_token_entropy=None if confidence is None else confidence[2],
        embedder=embedder,
        source=source,
        head_scores_version=head_scores_version,
    )
    session.add(row)
    session.flush()
    return row.id


def _stat_column(stats: Any, name: str, n: int) -> np.ndarray:
    values = stats[name] if isinstance(stats, Mapping) else getattr(stats, name)
    return _checked_column(values, name, n)


def _relational_column(stats: Any, name: str, n: int) -> np.ndarray | None:
    """A relational score's values, or None where it does not apply (or was not computed)."""
    values = stats.get(name) if isinstance(stats, Mapping) else stats.column(name)
    return None if values is None else _checked_column(values, name, n)


def _checked_column(values: Any, name: str, n: int) -> np.ndarray:
    column = np.asarray(values, dtype=np.float64).reshape(-1)
    if column.shape != (n,):
        raise InvalidInput(f"statistic {name!r} has {column.size} values for {n} head patterns.")
    return column


def save_head_patterns(
    session: Session,
    inference_id: int,
    heads: Sequence[HeadRef],
    embeddings: np.ndarray,  # (n, dim) float
    thumbnails: np.ndarray,  # (n, size, size) uint8
    stats: Any,  # attnlens.atlas.patterns.PatternStats, or a mapping name -> (n,) values
    reconstruction_errors: np.ndarray | None = None,  # (n,) float; None: not measured
) -> list[int]:
    """Store the head patterns of one inference; returns their ids (the FAISS ids) in input order."""
    n = len(heads)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    thumbnails = np.asarray(thumbnails)
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise InvalidInput(f"expected ({n}, dim) embeddings for {n} heads, got shape {embeddings.shape}.")
    if thumbnails.ndim != 3 or thumbnails.shape[0] != n or thumbnails.shape[1] != thumbnails.shape[2]:
        raise InvalidInput(
            f"expected ({n}, size, size) thumbnails for {n} heads, got shape {thumbnails.shape}."
        )
    columns: dict[str, np.ndarray | None] = {name: _stat_column(stats, name, n) for name in STAT_COLUMNS}
    columns.update((name, _relational_column(stats, name, n)) for name in RELATIONAL_SCORE_NAMES)
    columns["reconstruction_error"] = (
        None
        if reconstruction_errors is None
        else _checked_column(reconstruction_errors, "reconstruction_error", n)
    )
    # NaN ("does not apply" for one head) is stored as NULL: SQLite turns it into NULL by itself, and
    # PostgreSQL would keep a NaN that SQL aggregates and `IS NULL` treat otherwise.
    values = {
        name: [None] * n if column is None else [None if v != v else v for v in column.tolist()]
        for name, column in columns.items()
    }
    embedding_blobs, thumbnail_blobs = pack_embeddings(embeddings), pack_thumbnails(thumbnails)
    rows = [
        {
            "inference_id": inference_id,
            "layer": ref.layer,
            "head": ref.head,
            "embedding": embedding_blobs[i],
            "thumbnail": thumbnail_blobs[i],
            "thumbnail_size": thumbnails.shape[1],
            **{name: column[i] for name, column in values.items()},
        }
        for i, ref in enumerate(heads)
    ]
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return _copy_head_patterns(session, rows)
    # Core-level bulk insert: no ORM object per row (those cost more than the database's work, measured
    # in docs/benchmarks.md, "Bulk writes"); ids come back in the rows' order.
    statement = insert(HeadPattern).returning(HeadPattern.id, sort_by_parameter_order=True)
    return [int(i) for i in session.scalars(statement, rows)]


def _copy_head_patterns(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """PostgreSQL's COPY, the fastest way in: ids are drawn from the table's sequence first (COPY returns
    none), in one round trip, then the rows stream in with them."""
    connection = session.connection()
    ids = [
        int(i)
        for i in connection.execute(
            text("SELECT nextval(pg_get_serial_sequence('head_pattern', 'id')) FROM generate_series(1, :n)"),
            {"n": len(rows)},
        ).scalars()
    ]
    names = ["id", *rows[0]]
    driver = cast(Any, connection.connection.driver_connection)  # psycopg's own connection: COPY
    with driver.cursor() as cursor, cursor.copy(f"COPY head_pattern ({', '.join(names)}) FROM STDIN") as copy:
        for identifier, row in zip(ids, rows, strict=True):
            copy.write_row((identifier, *row.values()))
    return ids


@dataclass(frozen=True)
class PatternFilter:
    """Which head patterns a search may return. Unset fields do not filter."""

    layer: int | None = None
    head: int | None = None
    task: str | None = None
    first_token_correct: bool | None = None
    span_correct: bool | None = None
    model_name: str | None = None

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__dataclass_fields__)

    def apply(self, query: Select[Any]) -> Select[Any]:
        """Add this filter's conditions to a query over `HeadPattern`.

        Conditions on the inference or scenario become `inference_id IN (SELECT ...)`: the database then
        walks the (inference_id, layer, head) index instead of scanning the wide head_pattern rows, which
        was 10x faster on SQLite at 54k patterns (docs/benchmarks.md, "Store and index").
        """
        if self.layer is not None:
            query = query.where(HeadPattern.layer == self.layer)
        if self.head is not None:
            query = query.where(HeadPattern.head == self.head)
        inferences = select(Inference.id)
        if self.model_name is not None:
            inferences = inferences.where(Inference.model_name == self.model_name)
        if self.first_token_correct is not None:
            inferences = inferences.where(Inference.first_token_correct == self.first_token_correct)
        if self.span_correct is not None:
            inferences = inferences.where(Inference.span_correct == self.span_correct)
        if self.task is not None:
            inferences = inferences.join(Scenario, Scenario.id == Inference.scenario_id).where(
                Scenario.task == self.task
            )
        if inferences.whereclause is not None:
            query = query.where(HeadPattern.inference_id.in_(inferences))
        return query


def matching_pattern_ids(session: Session, pattern_filter: PatternFilter) -> np.ndarray:
    """Sorted int64 ids of the head patterns that pass the filter (for `PatternIndex.search(filter_ids=)`)."""
    return ids_of(session, pattern_filter.apply(select(HeadPattern.id)))


def driver_rows(session: Session, statement: Select[*tuple[Any, ...]]) -> np.ndarray:
    """Every row of a query of integer columns, as an (n, columns) int64 array read straight from the
    driver's cursor: ORM and Core row handling cost 10-50x more than the query itself for the hundreds of
    thousands of rows a broad filter or a whole map returns (docs/benchmarks.md, "Store and index")."""
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    params = (
        tuple(compiled.params[name] for name in compiled.positiontup or ())
        if compiled.positional
        else compiled.params
    )
    result = connection.exec_driver_sql(str(compiled), params)
    # SQLAlchemy's DBAPICursor protocol leaves out iteration (an optional DB-API extension), but the
    # drivers we support (sqlite3, psycopg) have iterable cursors.
    cursor = cast(Iterable[Sequence[Any]], result.cursor)
    columns = len(statement.selected_columns)
    rows = np.fromiter((value for row in cursor for value in row), dtype=np.int64).reshape(-1, columns)
    result.close()
    return rows


def ids_of(session: Session, statement: Select[Any]) -> np.ndarray:
    """The sorted int64 first column of a one-column query of ids."""
    # Sorted here rather than by ORDER BY, which would tempt SQLite into scanning the table in id order.
    return np.sort(driver_rows(session, statement)[:, 0])


def load_embeddings(session: Session, ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """(len(ids), dim) float32 embeddings in the order of `ids`; `InvalidInput` if one is missing."""
    wanted = [int(i) for i in ids]
    found: dict[int, bytes] = {}
    unique = list(dict.fromkeys(wanted))
    for start in range(0, len(unique), _LOOKUP_CHUNK):
        chunk = unique[start : start + _LOOKUP_CHUNK]
        rows = session.execute(select(HeadPattern.id, HeadPattern.embedding).where(HeadPattern.id.in_(chunk)))
        found.update((row_id, blob) for row_id, blob in rows)
    missing = [i for i in unique if i not in found]
    if missing:
        raise InvalidInput(f"no head pattern with id {missing[:5]}{'...' if len(missing) > 5 else ''}.")
    return unpack_embeddings([found[i] for i in wanted])


def iter_embedding_batches(
    session: Session, batch_size: int = 50_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every stored embedding as `(ids (b,) int64, vectors (b, dim) float32)` batches in id order.

    Keyset pagination (id > last id) keeps each batch query cheap however large the table is.
    """
    return keyset_embedding_batches(session, select(HeadPattern.id, HeadPattern.embedding), batch_size)


def keyset_embedding_batches(
    session: Session, query: Select[int, bytes], batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids (b,) int64, vectors (b, dim) float32) batches of a query that selects (HeadPattern.id,
    HeadPattern.embedding), in id order. Keyset pagination (id > the last batch's largest id) keeps each
    batch query cheap however large the table is."""
    for rows in keyset_pages(session, query, batch_size):
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        yield ids, unpack_embeddings([row[1] for row in rows])


def keyset_pages(
    session: Session, query: Select[*tuple[Any, ...]], batch_size: int
) -> Iterator[Sequence[Any]]:
    """The rows of a query whose first column is HeadPattern.id, a page at a time in id order. Keyset
    pagination (id > the last page's largest id) keeps each page's query cheap however large the table."""
    last_id = 0
    while True:
        rows = session.execute(
            query.where(HeadPattern.id > last_id).order_by(HeadPattern.id).limit(batch_size)
        ).all()
        if not rows:
            return
        yield rows
        last_id = int(rows[-1][0])


def pattern_ids(session: Session) -> np.ndarray:
    """Every head-pattern id, sorted (what `PatternIndex.check` compares with the index)."""
    return np.asarray(session.scalars(select(HeadPattern.id).order_by(HeadPattern.id)).all(), dtype=np.int64)


def save_inference_with_heads(
    store: Store,
    *,
    inference: dict[str, Any],
    heads: Sequence[HeadRef],
    embeddings: np.ndarray,  # (n, dim) float
    thumbnails: np.ndarray,  # (n, size, size) uint8
    stats: Any,
    reconstruction_errors: np.ndarray | None = None,
) -> list[int] | None:
    """One inference (the keyword arguments of `save_inference`) with its head patterns, in one
    transaction; returns the head pattern ids, or None when another writer stored this (scenario, model)
    meanwhile (the unique key says so, and nothing is written twice)."""
    try:
        with store.session(immediate=True) as session:
            inference_id = save_inference(session, **inference)
            return save_head_patterns(
                session, inference_id, heads, embeddings, thumbnails, stats, reconstruction_errors
            )
    except IntegrityError:
        return None


def embedding_dims(session: Session) -> list[int]:
    """The distinct embedding widths stored (one, unless embedders of different widths were mixed)."""
    lengths = session.scalars(select(func.length(HeadPattern.embedding)).distinct())
    return sorted(int(n) // 2 for n in lengths)  # float16: two bytes a value


def pattern_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(HeadPattern)) or 0)


def first_embedding_dim(session: Session) -> int | None:
    """The width of the first stored embedding, or None when there is none."""
    first = session.scalar(select(HeadPattern.embedding).order_by(HeadPattern.id).limit(1))
    return None if first is None else len(first) // 2


def get_head_pattern(session: Session, pattern_id: int) -> HeadPattern | None:
    return session.get(HeadPattern, pattern_id)
