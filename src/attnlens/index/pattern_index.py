"""`PatternIndex`: nearest-neighbour search over head-pattern embeddings, with FAISS ids = head_pattern ids.

Two shapes, chosen by size (docs/benchmarks.md, "Store and index", has the measurements behind them):
- flat (exact): `IndexIDMap2(IndexFlat)`, up to `IndexSettings.flat_max_vectors`;
- compressed: `IndexIVFPQ` (ids stored in its inverted lists), `pq_bytes` bytes per vector. Its candidates
  (k x `rerank_factor`) are re-ranked exactly with the float16 embeddings from the database when the index
  was opened with a store, which brings recall back to that of exact search at little cost.
The database is the source of truth: `rebuild_from_db` recreates the index from it, `check` compares them.
With the cosine metric, vectors are scaled to unit length and scores are cosine similarities (higher is
nearer); with l2, scores are squared distances (lower is nearer).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import cast

import faiss
import numpy as np

from attnlens.config import IndexSettings, Settings
from attnlens.errors import IndexDimensionMismatch, InvalidInput, StoreError
from attnlens.index.check import IndexCheckReport, compare_with_database
from attnlens.index.files import read_index, temporary_path, write_index_atomically
from attnlens.index.search import SearchResult, exact_scores, faiss_threads, search_index, sorted_unique
from attnlens.store.engine import Store
from attnlens.store.patterns import (
    first_embedding_dim,
    iter_embedding_batches,
    load_embeddings,
    pattern_count,
    pattern_ids,
)

log = logging.getLogger(__name__)

INDEX_FILENAME = "patterns.faiss"
KIND_EMPTY, KIND_FLAT, KIND_IVFPQ = "empty", "flat", "ivfpq"
# Below this many vectors an index stays flat whatever the settings: a product quantizer needs 256
# training points per code book, and compressing so few vectors saves nothing that matters.
MIN_COMPRESSED_VECTORS = 1024


def index_kind(index: faiss.Index | None) -> str:
    if index is None:
        return KIND_EMPTY
    return KIND_IVFPQ if faiss.try_extract_index_ivf(index) is not None else KIND_FLAT


def stored_ids(index: faiss.Index | None) -> np.ndarray:
    """Every id held by the index, sorted (int64)."""
    if index is None:
        return np.zeros(0, dtype=np.int64)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        # downcast_index returns the concrete class (here the flat index's IndexIDMap2); the stub says Index.
        id_map = cast(faiss.IndexIDMap, faiss.downcast_index(index)).id_map
        return np.sort(faiss.vector_to_array(id_map).astype(np.int64))
    invlists = ivf.invlists
    assert invlists is not None  # an IVF index always owns its inverted lists
    parts = []
    for list_no in range(ivf.nlist):
        size = invlists.list_size(list_no)
        if size:
            pointer = invlists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(pointer, size).astype(np.int64).copy())
            # The faiss stub leaves out InvertedLists.release_ids (it exists in the SWIG bindings).
            invlists.release_ids(list_no, pointer)  # type: ignore[attr-defined]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def auto_ivf_lists(n_vectors: int) -> int:
    """About 4*sqrt(n) lists (a power of 2), and at least 39 training points per list."""
    target = 2 ** round(math.log2(max(4 * math.sqrt(n_vectors), 1)))
    return int(max(1, min(target, n_vectors // 39)))


class PatternIndex:
    """The FAISS index of one atlas. Open it with `PatternIndex.open(settings, store)`."""

    def __init__(
        self, path: Path, settings: IndexSettings, index: faiss.Index | None, store: Store | None
    ) -> None:
        self.path = path
        self.settings = settings
        self.index = index
        self.store = store
        self._file_stamp = self._stamp()

    @classmethod
    def open(cls, settings: Settings, store: Store | None = None) -> PatternIndex:
        """The saved index (or an empty one if none was saved yet). With `store`, compressed results are
        re-ranked with the database's embeddings."""
        path = settings.index_dir / INDEX_FILENAME
        index = read_index(path) if path.is_file() else None
        if temporary_path(path).exists():
            log.warning("ignoring %s, left by an interrupted save", temporary_path(path))
        return cls(path, settings.index, index, store)

    # -- facts ---------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return index_kind(self.index)

    @property
    def dim(self) -> int | None:
        return None if self.index is None else self.index.d

    @property
    def count(self) -> int:
        return 0 if self.index is None else self.index.ntotal

    @property
    def cosine(self) -> bool:
        if self.index is None:
            return self.settings.metric == "cosine"
        return self.index.metric_type == faiss.METRIC_INNER_PRODUCT

    @property
    def needs_rebuild(self) -> bool:
        """A flat index grown past `flat_max_vectors` (adds keep it exact; a rebuild compresses it)."""
        return self.kind == KIND_FLAT and self.count > self.settings.flat_max_vectors

    def ids(self) -> np.ndarray:
        return stored_ids(self.index)

    def __repr__(self) -> str:
        return f"PatternIndex({self.kind}, {self.count} vectors, dim={self.dim}, {self.path})"

    # -- writes --------------------------------------------------------------------------------------
    def _prepare(
        self, vectors: np.ndarray, *, check_dim: bool = True, cosine: bool | None = None
    ) -> np.ndarray:
        """(n, dim) float32, contiguous, unit length for the cosine metric."""
        x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if x.ndim != 2:
            raise InvalidInput(f"expected vectors of shape (n, dim), got {x.shape}.")
        if check_dim and self.dim is not None and x.shape[1] != self.dim:
            raise IndexDimensionMismatch(
                f"the index holds {self.dim}-d vectors, these are {x.shape[1]}-d: embeddings from another "
                "AP-MAE checkpoint? Rebuild with `attnlens index rebuild` after re-embedding."
            )
        if self.cosine if cosine is None else cosine:
            x = x.copy()
            faiss.normalize_L2(x)
        return x

    def _new_flat(self, dim: int) -> faiss.Index:
        base = faiss.IndexFlatIP(dim) if self.settings.metric == "cosine" else faiss.IndexFlatL2(dim)
        return faiss.IndexIDMap2(base)

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add (or replace) vectors under their head-pattern ids. Not saved until `save()`."""
        id_array = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
        if id_array.ndim != 1 or len(np.unique(id_array)) != len(id_array):
            raise InvalidInput("ids must be a one-dimensional array of distinct head-pattern ids.")
        x = self._prepare(vectors)
        if x.shape[0] != id_array.shape[0]:
            raise InvalidInput(f"{id_array.shape[0]} ids for {x.shape[0]} vectors.")
        if self.index is None:
            self.index = self._new_flat(x.shape[1])
        self.remove(id_array)  # adding an id twice replaces its vector (re-running a build stays clean)
        self.index.add_with_ids(x, id_array)
        if self.needs_rebuild:
            log.info(
                "the flat index has %d vectors, more than flat_max_vectors; `attnlens index rebuild` "
                "compresses it",
                self.count,
            )

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Drop these ids; returns how many were there."""
        if self.index is None or len(ids) == 0:
            return 0
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(np.asarray(ids, dtype=np.int64)))
        return int(self.index.remove_ids(selector))

    def save(self) -> None:
        """Write the index atomically (readers see the old file or the new one, never a torn one)."""
        if self.index is None:
            self.path.unlink(missing_ok=True)
        else:
            write_index_atomically(self.index, self.path)
        self._file_stamp = self._stamp()

    # -- reads ---------------------------------------------------------------------------------------
    def search(
        self, vectors: np.ndarray, k: int, filter_ids: np.ndarray | list[int] | None = None
    ) -> SearchResult:
        """The k nearest stored patterns of each query vector, among `filter_ids` if given.

        Rows with fewer than k qualifying patterns are padded with id -1. Build `filter_ids` with
        `attnlens.store.patterns.matching_pattern_ids(session, PatternFilter(...))`.
        """
        if k <= 0:
            raise InvalidInput(f"k must be positive, got {k}.")
        queries = self._prepare(vectors)
        if self.index is None:
            return SearchResult.empty(len(queries), k, self.cosine)
        allowed = None if filter_ids is None else sorted_unique(filter_ids)
        rerank = self.kind == KIND_IVFPQ and self.store is not None
        fetch = k * self.settings.rerank_factor if rerank else k
        result = search_index(self.index, queries, fetch, allowed, self.settings)
        if not rerank:
            return result
        return self._rerank(queries, result, k)

    def _rerank(self, queries: np.ndarray, candidates: SearchResult, k: int) -> SearchResult:
        assert self.store is not None  # internal: only called when a store is present
        wanted = np.unique(candidates.ids[candidates.ids >= 0])
        with self.store.session() as session:
            vectors = (
                load_embeddings(session, wanted)
                if len(wanted)
                else np.zeros((0, queries.shape[1]), np.float32)
            )
        if self.cosine and len(vectors):
            faiss.normalize_L2(vectors)
        position = {int(i): row for row, i in enumerate(wanted)}
        out = SearchResult.empty(len(queries), k, self.cosine)
        for q, row_ids in enumerate(candidates.ids):
            valid = row_ids[row_ids >= 0]
            if not len(valid):
                continue
            scores = exact_scores(queries[q], vectors[[position[int(i)] for i in valid]], self.cosine)
            order = np.argsort(-scores if self.cosine else scores, kind="stable")[:k]
            out.ids[q, : len(order)] = valid[order]
            out.scores[q, : len(order)] = scores[order]
        return out

    def reconstruct(self, pattern_id: int) -> np.ndarray:
        """The stored vector of one id (exact for flat indexes only)."""
        if self.kind != KIND_FLAT:
            raise StoreError("only a flat index keeps exact vectors; read the embedding from the database.")
        assert self.index is not None  # a flat kind implies an index
        # The faiss stub's first overload (torch.Tensor) also matches a call without `x`; numpy in, numpy out.
        return cast(np.ndarray, self.index.reconstruct(int(pattern_id)))

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def reload_if_changed(self) -> bool:
        """Re-read the file if another process saved a new one since (the API calls this)."""
        stamp = self._stamp()
        if stamp == self._file_stamp:
            return False
        self.index = read_index(self.path) if stamp is not None else None
        self._file_stamp = stamp
        return True

    # -- the database --------------------------------------------------------------------------------
    def rebuild_from_db(self, store: Store, *, progress: bool = False, seed: int = 0) -> int:
        """Recreate the index from every embedding in the database, then save it; returns the count.

        Up to `flat_max_vectors` the result is exact (flat); beyond it, IVF-PQ trained on a seeded sample.
        """
        from tqdm import tqdm

        with faiss_threads(self.settings.build_threads), store.session() as session:
            count = pattern_count(session)
            dim = first_embedding_dim(session)
            if count == 0 or dim is None:
                self.index = None
                self.save()
                return 0
            compress = count > max(self.settings.flat_max_vectors, MIN_COMPRESSED_VECTORS)
            index = self._trained_ivfpq(session, dim, count, seed) if compress else self._new_flat(dim)
            self.index = index
            with tqdm(total=count, desc="index", unit="vec", disable=not progress) as bar:
                for ids, vectors in iter_embedding_batches(session):
                    self.index.add_with_ids(self._prepare(vectors), ids)
                    bar.update(len(ids))
        self.save()
        log.info("rebuilt %s", self)
        return self.count

    def _trained_ivfpq(self, session, dim: int, count: int, seed: int) -> faiss.Index:
        m = self.settings.pq_bytes
        if dim % m:
            raise InvalidInput(
                f"pq_bytes={m} does not divide the embedding size {dim}; set ATTNLENS_INDEX__PQ_BYTES to a "
                "divisor."
            )
        nlist = self.settings.ivf_lists or auto_ivf_lists(count)
        metric = faiss.METRIC_INNER_PRODUCT if self.settings.metric == "cosine" else faiss.METRIC_L2
        quantizer = faiss.IndexFlatIP(dim) if metric == faiss.METRIC_INNER_PRODUCT else faiss.IndexFlatL2(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, 8, metric)  # keeps a reference to its quantizer
        sample_size = min(count, max(self.settings.train_sample, 40 * nlist))
        all_ids = pattern_ids(session)
        sample = np.sort(np.random.default_rng(seed).choice(all_ids, size=sample_size, replace=False))
        index.train(
            self._prepare(
                load_embeddings(session, sample), check_dim=False, cosine=metric == faiss.METRIC_INNER_PRODUCT
            )
        )
        index.nprobe = self.settings.nprobe
        return index

    def check(self, store: Store) -> IndexCheckReport:
        """Compare the index with the database: ids on one side only, dimensions, and (flat) vectors."""
        return compare_with_database(self, store)
