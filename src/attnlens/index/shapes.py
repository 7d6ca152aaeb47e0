"""The two FAISS index shapes and the small operations on them that do not care which space they serve.

- flat (exact): `IndexIDMap2(IndexFlat)`, up to `IndexSettings.flat_max_vectors`, and every delta index;
- compressed: `IndexIVFPQ` (ids stored in its inverted lists), `pq_bytes` bytes per vector.
With the cosine metric, vectors are scaled to unit length and scores are cosine similarities (higher is
nearer); with l2, scores are squared distances (lower is nearer).
"""

from __future__ import annotations

import math
from typing import cast

import faiss
import numpy as np

from attnlens.config import IndexSettings
from attnlens.errors import IndexDimensionMismatch, InvalidInput

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


def is_cosine(index: faiss.Index | None, settings: IndexSettings) -> bool:
    if index is None:
        return settings.metric == "cosine"
    return index.metric_type == faiss.METRIC_INNER_PRODUCT


def prepare_vectors(vectors: np.ndarray, *, dim: int | None, cosine: bool) -> np.ndarray:
    """(n, dim) float32, contiguous, unit length for the cosine metric; `dim` (when known) is checked."""
    x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if x.ndim != 2:
        raise InvalidInput(f"expected vectors of shape (n, dim), got {x.shape}.")
    if dim is not None and x.shape[1] != dim:
        raise IndexDimensionMismatch(
            f"the index holds {dim}-d vectors, these are {x.shape[1]}-d: embeddings from another "
            "AP-MAE checkpoint? Rebuild with `attnlens index rebuild` after re-embedding."
        )
    if cosine:
        x = x.copy()
        faiss.normalize_L2(x)
    return x


def new_flat(dim: int, settings: IndexSettings) -> faiss.Index:
    base = faiss.IndexFlatIP(dim) if settings.metric == "cosine" else faiss.IndexFlatL2(dim)
    return faiss.IndexIDMap2(base)


def new_ivfpq(dim: int, count: int, settings: IndexSettings) -> faiss.IndexIVFPQ:
    """An untrained IVF-PQ index for about `count` vectors."""
    m = settings.pq_bytes
    if dim % m:
        raise InvalidInput(
            f"pq_bytes={m} does not divide the embedding size {dim}; set ATTNLENS_INDEX__PQ_BYTES to a "
            "divisor."
        )
    nlist = settings.ivf_lists or auto_ivf_lists(count)
    metric = faiss.METRIC_INNER_PRODUCT if settings.metric == "cosine" else faiss.METRIC_L2
    quantizer = faiss.IndexFlatIP(dim) if metric == faiss.METRIC_INNER_PRODUCT else faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, 8, metric)  # keeps a reference to its quantizer
    index.nprobe = settings.nprobe
    return index


def remove_ids(index: faiss.Index | None, ids: np.ndarray) -> int:
    """Drop these ids from `index`; returns how many were there."""
    if index is None or len(ids) == 0:
        return 0
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(np.asarray(ids, dtype=np.int64)))
    return int(index.remove_ids(selector))
