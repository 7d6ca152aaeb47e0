"""`SpaceIndex`: the nearest-neighbour index of one embedding space (model, embedder).

Two FAISS indexes, searched together and merged by score:
- the main index, exact (flat) up to `IndexSettings.flat_max_vectors`, IVF-PQ beyond (its candidates,
  k x `rerank_factor`, are re-ranked exactly with the database's float16 embeddings when a store is at
  hand); written only by a rebuild or a fold, each a new generation (see `attnlens.index.spaces`);
- the delta, a small flat index of the vectors added since: adding a pasted inference's patterns rewrites
  this file alone, so its cost depends on the delta's size, not the atlas's. Once it holds more than
  `IndexSettings.delta_max_vectors` it is folded into a new main generation.

The main index is read lazily: a writer that only appends (a paste) never loads it, because the manifest
records its count and largest id. The database is the source of truth: `sync` adds what the index lacks
and drops what the database no longer has, `rebuild_from_db` recreates the space's index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np

from attnlens.config import IndexSettings
from attnlens.errors import IndexDimensionMismatch, InvalidInput, StoreError
from attnlens.index.files import read_index, write_index_atomically, writer_lock
from attnlens.index.search import SearchResult, exact_scores, faiss_threads, merge_results, search_index
from attnlens.index.shapes import (
    KIND_EMPTY,
    KIND_FLAT,
    KIND_IVFPQ,
    MIN_COMPRESSED_VECTORS,
    index_kind,
    is_cosine,
    new_flat,
    new_ivfpq,
    prepare_vectors,
    remove_ids,
    stored_ids,
)
from attnlens.index.spaces import IndexSpace, SpaceEntry
from attnlens.store.engine import Store
from attnlens.store.index_rows import (
    SpaceInferences,
    count_patterns_of,
    inference_ids_after,
    iter_embeddings_of,
    iter_space_embeddings,
    space_embedding_dims,
    space_inferences,
    space_pattern_ids,
    space_rows,
)
from attnlens.store.patterns import load_embeddings

log = logging.getLogger(__name__)
_CHUNK = 20_000

Stamp = tuple[int, int, int] | None


def file_stamp(path: Path | None) -> Stamp:
    """(inode, mtime, size): every atomic save makes a new inode, so any rewrite changes the stamp."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def flat_contents(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of a flat `IndexIDMap2`, in insertion order (vectors as stored: prepared)."""
    id_map = cast(faiss.IndexIDMap2, faiss.downcast_index(index))
    ids = faiss.vector_to_array(id_map.id_map).astype(np.int64)
    inner = faiss.downcast_index(id_map.index)
    vectors = inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else np.zeros((0, index.d), np.float32)
    return ids, np.ascontiguousarray(vectors, dtype=np.float32)


class SpaceIndex:
    """One space's main + delta index. Get it from `PatternIndex.space(...)`; `commit` records a new
    manifest entry for the space (the owning `PatternIndex` writes the manifest)."""

    def __init__(
        self,
        folder: Path,
        settings: IndexSettings,
        entry: SpaceEntry,
        store: Store | None,
        commit: Callable[[SpaceEntry], None],
        *,
        read_delta: bool = True,
    ) -> None:
        self.folder = folder
        self.settings = settings
        self.entry = entry
        self.store = store
        self._commit = commit
        self._main: faiss.Index | None = None
        self._main_loaded = entry.kind == KIND_EMPTY
        self._main_dirty = False
        self._main_max_id = entry.main_max_id
        self._main_stamp: Stamp = None
        self.delta: faiss.Index | None = None
        self._delta_dirty = False
        self._delta_stamp: Stamp = None
        if read_delta:  # a rebuild does not (a torn delta is one reason to rebuild)
            self._load_delta()

    # -- facts ---------------------------------------------------------------------------------------
    @property
    def space(self) -> IndexSpace:
        return self.entry.space

    @property
    def main_path(self) -> Path | None:
        return None if self.entry.kind == KIND_EMPTY else self.entry.main_file(self.folder)

    @property
    def delta_path(self) -> Path:
        return self.entry.delta_file(self.folder)

    @property
    def main_count(self) -> int:
        return (
            (0 if self._main is None else self._main.ntotal) if self._main_loaded else self.entry.main_count
        )

    @property
    def delta_count(self) -> int:
        return 0 if self.delta is None else self.delta.ntotal

    @property
    def count(self) -> int:
        return self.main_count + self.delta_count

    @property
    def max_id(self) -> int:
        """The largest id held (0 when empty): an incremental sync reads the database's rows after it."""
        delta_max = int(stored_ids(self.delta)[-1]) if self.delta_count else 0
        return max(self._main_max_id if self.main_count else 0, delta_max)

    @property
    def dim(self) -> int | None:
        if self._main_loaded and self._main is not None:
            return self._main.d
        if self.entry.dim is not None and self.entry.kind != KIND_EMPTY:
            return self.entry.dim
        return None if self.delta is None else self.delta.d

    @property
    def kind(self) -> str:
        """The main index's shape; `flat` for a space with only a delta (which is always flat)."""
        main_kind = index_kind(self._main) if self._main_loaded else self.entry.kind
        if main_kind == KIND_EMPTY and self.delta_count:
            return KIND_FLAT
        return main_kind

    @property
    def cosine(self) -> bool:
        if self._main_loaded and self._main is not None:
            return is_cosine(self._main, self.settings)
        return is_cosine(self.delta, self.settings)

    @property
    def needs_rebuild(self) -> bool:
        """A flat main grown past `flat_max_vectors` (folds keep it exact; a rebuild compresses it)."""
        main_kind = index_kind(self._main) if self._main_loaded else self.entry.kind
        return main_kind == KIND_FLAT and self.main_count > self.settings.flat_max_vectors

    def main_index(self) -> faiss.Index | None:
        """The main FAISS index, read on first use."""
        if not self._main_loaded:
            path = self.entry.main_file(self.folder)
            self._main_stamp = file_stamp(path)
            self._main = read_index(path)
            self._main_loaded = True
        return self._main

    def main_ids(self) -> np.ndarray:
        return stored_ids(self.main_index())

    def delta_ids(self) -> np.ndarray:
        return stored_ids(self.delta)

    def ids(self) -> np.ndarray:
        """Every id held (main and delta), sorted and distinct."""
        return np.union1d(self.main_ids(), self.delta_ids())

    def __repr__(self) -> str:
        return (
            f"SpaceIndex({self.space}: {self.kind}, {self.main_count} + {self.delta_count} vectors, "
            f"dim={self.dim})"
        )

    # -- reading the files ---------------------------------------------------------------------------
    def _load_delta(self) -> None:
        path = self.delta_path
        self._delta_stamp = file_stamp(path)
        self.delta = read_index(path) if self._delta_stamp is not None else None
        self._delta_dirty = False

    def refresh(self, entry: SpaceEntry) -> bool:
        """Follow the manifest's entry for this space (another writer's save); True if anything changed."""
        if entry.main_facts != self.entry.main_facts or (
            self._main_loaded and file_stamp(self.main_path) != self._main_stamp
        ):
            self.entry = entry
            self._main, self._main_loaded = None, entry.kind == KIND_EMPTY
            self._main_dirty, self._main_max_id = False, entry.main_max_id
            self._load_delta()
            return True
        self.entry = entry  # perhaps a newer fingerprint: nothing to read for it
        if file_stamp(self.delta_path) != self._delta_stamp:
            self._load_delta()  # a paste appended: only the small delta is read again
            return True
        return False

    # -- writes --------------------------------------------------------------------------------------
    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add (or replace) vectors under their head-pattern ids, into the delta. Saved by `save()`."""
        id_array = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
        if id_array.ndim != 1 or len(np.unique(id_array)) != len(id_array):
            raise InvalidInput("ids must be a one-dimensional array of distinct head-pattern ids.")
        x = prepare_vectors(vectors, dim=self.dim, cosine=self.cosine)
        if x.shape[0] != id_array.shape[0]:
            raise InvalidInput(f"{id_array.shape[0]} ids for {x.shape[0]} vectors.")
        if not len(id_array):
            return
        # Adding an id twice replaces its vector (re-running a build stays clean). Only ids up to the main
        # index's largest can be in it; new rows never are, so appending never reads the main index.
        if self.main_count and int(id_array.min()) <= self._main_max_id:
            if remove_ids(self.main_index(), id_array):
                self._main_dirty = True
        if self.delta is None:
            self.delta = new_flat(x.shape[1], self.settings)
        remove_ids(self.delta, id_array)
        self.delta.add_with_ids(x, id_array)
        self._delta_dirty = True

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Drop these ids; returns how many were there."""
        id_array = np.asarray(ids, dtype=np.int64)
        if not len(id_array):
            return 0
        removed = remove_ids(self.delta, id_array)
        self._delta_dirty |= bool(removed)
        if self.main_count and int(id_array.min()) <= self._main_max_id:
            in_main = remove_ids(self.main_index(), id_array)
            self._main_dirty |= bool(in_main)
            removed += in_main
        return removed

    def save(self, *, commit: bool = False) -> None:
        """Write what changed, atomically: the delta alone after appends; a new main generation (the delta
        folded in) when the main index changed or the delta outgrew `delta_max_vectors`. Then the manifest
        entry, when it changed (a new space, a new generation, or with `commit` a new fingerprint)."""
        with writer_lock(self.folder):
            if self._main_dirty or self.delta_count > self.settings.delta_max_vectors:
                self.fold()
                return
            if self._delta_dirty:
                if self.delta is not None and self.delta.ntotal:
                    write_index_atomically(self.delta, self.delta_path)
                else:
                    self.delta_path.unlink(missing_ok=True)
                self._delta_stamp = file_stamp(self.delta_path)
                self._delta_dirty = False
                commit = True
            if commit:
                # After the delta: a crash in between leaves a fingerprint older than the delta, and the
                # next sync adds those rows again (an add replaces), never a fingerprint ahead of it.
                self._commit(self.entry)

    def fold(self) -> None:
        """Move the delta into the main index and write both as a new generation."""
        with writer_lock(self.folder):
            main = self.main_index()
            if self.delta_count:
                assert self.delta is not None  # a count implies a delta
                ids, vectors = flat_contents(self.delta)
                if main is None:
                    main = new_flat(self.delta.d, self.settings)
                with faiss_threads(self.settings.build_threads):
                    main.add_with_ids(vectors, ids)
            if self._main_dirty:  # ids were removed: the largest may have gone
                max_id = int(stored_ids(main)[-1]) if main is not None and main.ntotal else 0
            else:
                max_id = self.max_id
            self._write_generation(main, max_id)
            if self.needs_rebuild:
                log.info(
                    "the flat index of %s has %d vectors, more than flat_max_vectors; `attnlens index "
                    "rebuild` (or the next sync) compresses it",
                    self.space,
                    self.main_count,
                )

    def _write_generation(self, main: faiss.Index | None, max_id: int) -> None:
        if main is not None and main.ntotal == 0:
            main = None
        entry = self.entry.next_generation(
            main_count=0 if main is None else main.ntotal,
            main_max_id=max_id if main is not None else 0,
            dim=None if main is None else main.d,
            kind=index_kind(main),
        )
        if main is not None:
            write_index_atomically(main, entry.main_file(self.folder))
        self._commit(entry)  # the manifest names the new generation: from here on it is in force
        self._main_stamp = file_stamp(entry.main_file(self.folder) if main is not None else None)
        self.entry = entry
        self._main, self._main_loaded, self._main_dirty, self._main_max_id = main, True, False, max_id
        self.delta, self._delta_dirty, self._delta_stamp = None, False, None

    # -- the database --------------------------------------------------------------------------------
    def rebuild_from_db(
        self,
        store: Store,
        *,
        progress: bool = False,
        seed: int = 0,
        inferences: SpaceInferences | None = None,
    ) -> int:
        """Recreate this space's index from its embeddings in the database; returns the count.

        Up to `flat_max_vectors` the result is exact (flat); beyond it, IVF-PQ trained on a seeded sample.
        """
        from tqdm import tqdm

        space = self.space
        with writer_lock(self.folder), faiss_threads(self.settings.build_threads), store.session() as s:
            if inferences is None:  # read first: rows written meanwhile are added again by the next sync
                inferences = space_inferences(s).get((space.model, space.embedder), SpaceInferences())
            count = space_rows(s, space.model, space.embedder).count
            dims = space_embedding_dims(s, space.model, space.embedder) if count else []
            if len(dims) > 1:
                raise IndexDimensionMismatch(
                    f"the database holds embeddings of several widths {dims} for {space}: rows of two AP-MAE "
                    "checkpoints under one name? Re-embed them, or delete one checkpoint's rows."
                )
            index, max_id = None, 0
            if count:
                compress = count > max(self.settings.flat_max_vectors, MIN_COMPRESSED_VECTORS)
                index = self._trained_ivfpq(s, dims[0], count, seed) if compress else None
                index = index if index is not None else new_flat(dims[0], self.settings)
                cosine = is_cosine(index, self.settings)
                with tqdm(total=count, desc=f"index {space.model}", unit="vec", disable=not progress) as bar:
                    for ids, vectors in iter_space_embeddings(s, space.model, space.embedder):
                        index.add_with_ids(prepare_vectors(vectors, dim=dims[0], cosine=cosine), ids)
                        max_id = int(ids[-1])
                        bar.update(len(ids))
        self.entry = self._with_fingerprint(self.entry, inferences)
        self._write_generation(index, max_id)
        log.info("rebuilt %s", self)
        return self.count

    def _trained_ivfpq(self, session: Any, dim: int, count: int, seed: int) -> faiss.Index:
        index = new_ivfpq(dim, count, self.settings)
        sample_size = min(count, max(self.settings.train_sample, 40 * index.nlist))
        all_ids = space_pattern_ids(session, self.space.model, self.space.embedder)
        sample = np.sort(np.random.default_rng(seed).choice(all_ids, size=sample_size, replace=False))
        cosine = index.metric_type == faiss.METRIC_INNER_PRODUCT
        index.train(prepare_vectors(load_embeddings(session, sample), dim=dim, cosine=cosine))
        return index

    def sync(self, store: Store, inferences: SpaceInferences | None = None) -> dict[str, Any]:
        """Make this space's index agree with the database; returns what was done.

        The manifest records the fingerprint of the inferences the index reflects. When the database only
        gained inferences since (the fingerprint of those up to the recorded largest id is unchanged), only
        their head patterns are read and appended to the delta: no id comparison, no read of the main
        index. Otherwise (rows deleted, or committed out of id order) every id of the space is compared.
        """
        space = self.space
        with writer_lock(self.folder):
            if inferences is None:
                with store.session() as s:
                    inferences = space_inferences(s).get((space.model, space.embedder), SpaceInferences())
            if self._fingerprint() == inferences:
                return {"rebuilt": False, "added": 0, "removed": 0, "vectors": self.count}
            try:
                result = self._sync_inferences(store, inferences)
            except IndexDimensionMismatch:
                # The checkpoint behind this space changed width: if the database now holds one width,
                # the space's index is rebuilt from it (else the rebuild says which widths are mixed).
                result = {"rebuilt": True, "vectors": self.rebuild_from_db(store)}
            return result

    def _fingerprint(self) -> SpaceInferences:
        e = self.entry
        return SpaceInferences(e.inferences, e.inference_id_sum, e.max_inference_id)

    def _sync_inferences(self, store: Store, inferences: SpaceInferences) -> dict[str, Any]:
        space, synced = self.space, self._fingerprint()
        with store.session() as s:
            new = inference_ids_after(s, space.model, space.embedder, synced.max_id)
            appended_only = (inferences.count - len(new), inferences.id_sum - sum(new)) == (
                synced.count,
                synced.id_sum,
            )
            n_new = count_patterns_of(s, new) if appended_only else None
        too_big_for_flat = max(self.settings.flat_max_vectors, MIN_COMPRESSED_VECTORS)
        main_kind = index_kind(self._main) if self._main_loaded else self.entry.kind
        if n_new is None or (main_kind != KIND_IVFPQ and self.count + n_new > too_big_for_flat):
            if n_new is None:
                return self._reconcile(store, inferences)
            return {"rebuilt": True, "vectors": self.rebuild_from_db(store, inferences=inferences)}
        added = 0
        with store.session() as s:
            batches = iter_embeddings_of(s, new)
            if n_new > self.settings.delta_max_vectors:  # a build's many rows: straight into the main index
                main = self.main_index()
                for ids, vectors in batches:
                    if main is None:
                        main = new_flat(vectors.shape[1], self.settings)
                        self._main, self._main_loaded = main, True
                    self.remove(ids)  # already held (a sync that crashed before its manifest write)
                    main.add_with_ids(prepare_vectors(vectors, dim=main.d, cosine=self.cosine), ids)
                    self._main_max_id = max(self._main_max_id, int(ids[-1]))
                    added += len(ids)
                self._main_dirty |= bool(added)
            else:
                for ids, vectors in batches:
                    self.add(ids, vectors)
                    added += len(ids)
        self.entry = self._with_fingerprint(self.entry, inferences)
        self.save(commit=True)
        if added:
            log.info("index of %s: %d added (%d vectors)", space, added, self.count)
        return {"rebuilt": False, "added": added, "removed": 0, "vectors": self.count}

    @staticmethod
    def _with_fingerprint(entry: SpaceEntry, inferences: SpaceInferences) -> SpaceEntry:
        return replace(
            entry,
            inferences=inferences.count,
            inference_id_sum=inferences.id_sum,
            max_inference_id=inferences.max_id,
        )

    def _reconcile(self, store: Store, inferences: SpaceInferences) -> dict[str, Any]:
        """Compare every id of the space with the database; drop extra ids, add missing ones."""
        space = self.space
        added = 0
        with store.session() as s:
            db_ids = space_pattern_ids(s, space.model, space.embedder)
            held = self.ids()
            removed = self.remove(np.setdiff1d(held, db_ids))
            missing = np.setdiff1d(db_ids, held)
            for start in range(0, len(missing), _CHUNK):
                chunk = missing[start : start + _CHUNK]
                self.add(chunk, load_embeddings(s, chunk))
                added += len(chunk)
        self.entry = self._with_fingerprint(self.entry, inferences)
        self.save(commit=True)
        log.info(
            "index of %s reconciled: %d added, %d removed (%d vectors)", space, added, removed, self.count
        )
        return {"rebuilt": False, "added": added, "removed": removed, "vectors": self.count}

    # -- reads ---------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> SearchResult:
        """The k nearest of (n, dim) prepared queries in the main index and the delta, merged by score;
        `allowed`: sorted distinct ids a hit must be among (None: any)."""
        parts = []
        main = self.main_index()
        if main is not None and main.ntotal:
            rerank = index_kind(main) == KIND_IVFPQ and self.store is not None
            fetch = k * self.settings.rerank_factor if rerank else k
            found = search_index(main, queries, fetch, allowed, self.settings)
            parts.append(self._rerank(queries, found, k) if rerank else found)
        if self.delta is not None and self.delta.ntotal:
            parts.append(search_index(self.delta, queries, k, allowed, self.settings))
        if len(parts) == 1:
            return parts[0]
        return merge_results(parts, len(queries), k, self.cosine)

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
        """The stored vector of one id: exact from the delta or a flat main index."""
        if self.delta is not None and pattern_id in set(self.delta_ids().tolist()):
            return cast(np.ndarray, self.delta.reconstruct(int(pattern_id)))
        main = self.main_index()
        if index_kind(main) != KIND_FLAT:
            raise StoreError("only a flat index keeps exact vectors; read the embedding from the database.")
        assert main is not None  # a flat kind implies an index
        # The faiss stub's first overload (torch.Tensor) also matches a call without `x`; numpy in, numpy out.
        return cast(np.ndarray, main.reconstruct(int(pattern_id)))
