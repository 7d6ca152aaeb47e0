"""FAISS searches with an id filter, and the exact scores used to re-rank compressed results.

Two ways to apply a filter, picked by how much of the index it admits (measured in docs/benchmarks.md,
"Store and index"):
- narrow filters: a FAISS id selector (a bitmap of allowed ids) in the search parameters, so the index
  skips other vectors while it scans. An IVF index scans `nprobe` of its lists; when only a
  fraction `s` of the vectors may match, it scans about `nprobe / s` lists, so that about as many
  matching vectors are seen as in an unfiltered search.
- broad filters (at least `overfetch_min_fraction`) on an IVF index: an ordinary search for about 2k/s
  neighbours, keeping the allowed ones. The selector makes the IVF scan more lists (nprobe / s) and test
  every code against it, which at 1M vectors was 2-3x slower than over-fetching once a filter admits a few
  percent. Rows left with fewer than k matches are searched again with the selector. On a flat index the
  selector was faster at every breadth measured, so it is always used there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import faiss
import numpy as np

from attnlens.config import IndexSettings


@dataclass(frozen=True)
class SearchResult:
    """Nearest neighbours of n queries."""

    scores: np.ndarray  # (n, k) float32: cosine similarity (higher is nearer) or squared L2 (lower is nearer)
    ids: np.ndarray  # (n, k) int64 head-pattern ids; -1 pads rows with fewer than k matches

    @classmethod
    def empty(cls, n: int, k: int, cosine: bool) -> SearchResult:
        fill = -np.inf if cosine else np.inf
        return cls(np.full((n, k), fill, dtype=np.float32), np.full((n, k), -1, dtype=np.int64))


@contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run FAISS with `n` OpenMP threads inside the block, then restore the previous number."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def exact_scores(query: np.ndarray, vectors: np.ndarray, cosine: bool) -> np.ndarray:
    """Scores of one (dim,) query against (m, dim) vectors, in the index's convention."""
    if cosine:
        return vectors @ query
    diff = vectors - query[None, :]
    return np.einsum("md,md->m", diff, diff)


def sorted_unique(ids: np.ndarray | list[int]) -> np.ndarray:
    """Sorted distinct int64 ids. Filters from the database are already sorted: that case is one O(n)
    check (`np.unique` took 0.8 s on 485k sorted ids with numpy 2.4)."""
    array = np.asarray(ids, dtype=np.int64).ravel()
    if array.size < 2 or bool((array[1:] > array[:-1]).all()):
        return array
    array = np.sort(array)
    return array[np.concatenate(([True], array[1:] != array[:-1]))]


def is_member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Boolean mask of `ids` found in `sorted_ids` (binary search; np.isin sorts both every call)."""
    if sorted_ids.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    where = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return sorted_ids[where] == ids


# Bitmaps up to this size; beyond it (ids far larger than their count), a hash set of the ids.
_MAX_BITMAP_BYTES = 64 << 20


def id_selector(allowed: np.ndarray) -> tuple[faiss.IDSelector, np.ndarray | None]:
    """A FAISS selector admitting `allowed` (sorted, non-negative), and the buffer it points into (keep it
    alive while the selector is used). Database ids are dense, so a bitmap is small: for 1M ids it is
    125 KiB, built in 0.5 ms, against 85 ms for the hash set of `IDSelectorBatch` at 485k ids."""
    top = int(allowed[-1]) if allowed.size else 0
    if allowed.size and allowed[0] >= 0 and top // 8 + 1 <= _MAX_BITMAP_BYTES:
        bits = np.zeros(top + 1, dtype=bool)
        bits[allowed] = True
        packed = np.packbits(bits, bitorder="little")
        return faiss.IDSelectorBitmap(len(packed), faiss.swig_ptr(packed)), packed
    return faiss.IDSelectorBatch(allowed), None


def filtered_nprobe(nprobe: int, nlist: int, n_allowed: int, n_total: int) -> int:
    if n_total == 0 or n_allowed >= n_total:
        return min(nprobe, nlist)
    selectivity = max(n_allowed, 1) / n_total
    return int(min(nlist, math.ceil(nprobe / selectivity)))


def search_index(
    index: faiss.Index,
    queries: np.ndarray,  # (n, dim) float32, prepared for the index's metric
    k: int,
    allowed: np.ndarray | None,  # sorted unique int64 ids, or None for no filter
    settings: IndexSettings,
) -> SearchResult:
    n = queries.shape[0]
    cosine = index.metric_type == faiss.METRIC_INNER_PRODUCT
    if allowed is not None:
        if len(allowed) == 0:
            return SearchResult.empty(n, k, cosine)
        broad = len(allowed) >= settings.overfetch_min_fraction * index.ntotal
        if broad and faiss.try_extract_index_ivf(index) is not None:
            return _over_fetch(index, queries, k, allowed, settings, cosine)
    return _search(index, queries, k, allowed, settings, cosine)


def _over_fetch(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    allowed: np.ndarray,
    settings: IndexSettings,
    cosine: bool,
) -> SearchResult:
    fetch = math.ceil(2 * k * index.ntotal / len(allowed))
    wide = _search(index, queries, fetch, None, settings, cosine)
    out = SearchResult.empty(len(queries), k, cosine)
    short = []
    for row in range(len(queries)):
        keep = np.flatnonzero(is_member(allowed, wide.ids[row]))[:k]
        out.ids[row, : len(keep)] = wide.ids[row, keep]
        out.scores[row, : len(keep)] = wide.scores[row, keep]
        if len(keep) < min(k, len(allowed)):
            short.append(row)
    if short:
        again = _search(index, queries[short], k, allowed, settings, cosine)
        out.ids[short] = again.ids
        out.scores[short] = again.scores
    return out


def _search(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    allowed: np.ndarray | None,
    settings: IndexSettings,
    cosine: bool,
) -> SearchResult:
    n = queries.shape[0]
    ivf = faiss.try_extract_index_ivf(index)
    params: faiss.SearchParameters
    if ivf is not None:
        ivf_params = faiss.SearchParametersIVF()
        n_allowed = index.ntotal if allowed is None else len(allowed)
        ivf_params.nprobe = filtered_nprobe(settings.nprobe, ivf.nlist, n_allowed, index.ntotal)
        params = ivf_params
    else:
        params = faiss.SearchParameters()
    selector, buffer = id_selector(allowed) if allowed is not None else (None, None)
    if selector is not None:
        params.sel = selector
    with faiss_threads(settings.search_threads):
        scores, ids = index.search(queries, min(k, max(index.ntotal, 1)), params=params)
    del selector, buffer  # the parameters hold raw pointers to both: keep them alive until here
    if scores.shape[1] < k:  # fewer stored vectors than k
        pad = SearchResult.empty(n, k, cosine)
        pad.scores[:, : scores.shape[1]] = scores
        pad.ids[:, : ids.shape[1]] = ids
        return pad
    return SearchResult(scores.astype(np.float32), ids.astype(np.int64))


def merge_results(parts: list[SearchResult], n: int, k: int, cosine: bool) -> SearchResult:
    """The k best of several result lists over the same n queries (a space's main and delta indexes), by
    score; an id found in more than one list is kept once, at its best score."""
    if not parts:
        return SearchResult.empty(n, k, cosine)
    scores = np.concatenate([p.scores for p in parts], axis=1)
    ids = np.concatenate([p.ids for p in parts], axis=1)
    key = np.where(ids < 0, np.inf, -scores if cosine else scores)
    order = np.argsort(key, axis=1, kind="stable")
    out = SearchResult.empty(n, k, cosine)
    for row in range(n):
        ranked = ids[row, order[row]]
        ranked_scores = scores[row, order[row]]
        keep = ranked >= 0
        _, first = np.unique(ranked, return_index=True)  # the first (best) place of every id
        keep[np.setdiff1d(np.arange(len(ranked)), first)] = False
        chosen = np.flatnonzero(keep)[:k]
        out.ids[row, : len(chosen)] = ranked[chosen]
        out.scores[row, : len(chosen)] = ranked_scores[chosen]
    return out
