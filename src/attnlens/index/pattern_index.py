"""`PatternIndex`: nearest-neighbour search over head-pattern embeddings, one index per embedding space.

Embeddings of different AP-MAE checkpoints, or of one checkpoint over different models' patterns, live in
different spaces (`IndexSpace`: model, embedder) and are never compared: each space has its own
`SpaceIndex` (a main index and a small delta, see `attnlens.index.space_index`), named by the folder's
manifest (`attnlens.index.spaces`), and a search names its space. FAISS ids are `head_pattern.id`.

The database is the source of truth: `sync` brings every space's index in step with it (incrementally
when rows were only added), `rebuild_from_db` recreates them all, `check` compares them.
docs/benchmarks.md ("Store and index") has the measurements behind the shapes and the delta.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from attnlens.config import IndexSettings, Settings
from attnlens.errors import IndexMissing, InvalidInput, StoreError
from attnlens.index.check import IndexCheckReport, compare_with_database
from attnlens.index.files import read_index, temporary_path, writer_lock
from attnlens.index.search import SearchResult, sorted_unique
from attnlens.index.shapes import (
    KIND_EMPTY,
    KIND_FLAT,
    KIND_IVFPQ,
    MIN_COMPRESSED_VECTORS,
    auto_ivf_lists,
    index_kind,
    prepare_vectors,
    stored_ids,
)
from attnlens.index.space_index import SpaceIndex, file_stamp
from attnlens.index.spaces import (
    LEGACY_INDEX_FILENAME,
    MANIFEST_FILENAME,
    IndexSpace,
    Manifest,
    SpaceEntry,
    space_files,
)
from attnlens.store.engine import Store
from attnlens.store.index_rows import (
    SpaceInferences,
    space_embedding_dims,
    space_inferences,
    space_patterns_up_to,
    space_rows,
)

log = logging.getLogger(__name__)

# The name of the single index file of every space before issue 12 (kept for callers that name it).
INDEX_FILENAME = LEGACY_INDEX_FILENAME

__all__ = [
    "INDEX_FILENAME",
    "KIND_EMPTY",
    "KIND_FLAT",
    "KIND_IVFPQ",
    "MIN_COMPRESSED_VECTORS",
    "PatternIndex",
    "auto_ivf_lists",
    "index_file_bytes",
    "index_kind",
    "stored_ids",
]


def index_file_bytes(folder: Path) -> int:
    """Bytes of every index file in the folder (all spaces' main and delta files and the manifest)."""
    if not folder.is_dir():
        return 0
    names = [p for p in folder.iterdir() if p.suffix in (".faiss", ".json") and p.is_file()]
    return sum(p.stat().st_size for p in names)


class PatternIndex:
    """The indexes of one atlas, one per embedding space. Open with `PatternIndex.open(settings, store)`;
    opening reads the manifest only, and each space's files are read when first used."""

    def __init__(self, folder: Path, settings: IndexSettings, store: Store | None = None) -> None:
        self.folder = folder
        self.settings = settings
        self.store = store
        self._spaces: dict[IndexSpace, SpaceIndex] = {}
        self._manifest = Manifest.read(folder)
        self._manifest_stamp = file_stamp(folder / MANIFEST_FILENAME)

    @classmethod
    def open(cls, settings: Settings, store: Store | None = None) -> PatternIndex:
        """The saved indexes (none yet is fine). With `store`, compressed results are re-ranked with the
        database's embeddings. `StoreError` if the manifest is unreadable."""
        index = cls(settings.index_dir, settings.index, store)
        if index.legacy_path.exists() and not index._manifest.spaces:
            log.warning(
                "%s is an index of the old single-file format (it mixes embedding spaces); the next sync or "
                "`attnlens index rebuild` replaces it",
                index.legacy_path,
            )
        return index

    # -- facts ---------------------------------------------------------------------------------------
    @property
    def legacy_path(self) -> Path:
        return self.folder / LEGACY_INDEX_FILENAME

    def spaces(self) -> list[IndexSpace]:
        """The spaces that have an index, sorted."""
        return sorted(self._manifest.spaces)

    def space(self, space: IndexSpace, *, create: bool = False) -> SpaceIndex | None:
        """The index of one space (read on first use); None if it has none, unless `create`."""
        loaded = self._spaces.get(space)
        if loaded is not None:
            return loaded
        entry = self._manifest.spaces.get(space)
        if entry is None:
            if not create:
                return None
            entry = SpaceEntry.new(space)
        loaded = SpaceIndex(self.folder, self.settings, entry, self.store, self._commit)
        self._spaces[space] = loaded
        return loaded

    @property
    def count(self) -> int:
        """Vectors in every space (main + delta)."""
        return sum(index.count for index in self._each())

    def _each(self) -> list[SpaceIndex]:
        return [index for space in self.spaces() if (index := self.space(space)) is not None]

    @property
    def file_bytes(self) -> int:
        return index_file_bytes(self.folder)

    def __repr__(self) -> str:
        return f"PatternIndex({len(self._manifest.spaces)} spaces, {self.count} vectors, {self.folder})"

    # -- following other writers ---------------------------------------------------------------------
    def reload_if_changed(self) -> bool:
        """Follow saves made since by another writer (the API calls this before a search). Reads only what
        changed: after a paste, the space's small delta file; after a fold or rebuild, its new main file
        (lazily, at its next search)."""
        changed = False
        stamp = file_stamp(self.folder / MANIFEST_FILENAME)
        if stamp != self._manifest_stamp:
            self._manifest = Manifest.read(self.folder)
            self._manifest_stamp = stamp
            changed = True
            for space in list(self._spaces):
                if space not in self._manifest.spaces:
                    del self._spaces[space]
        for space, index in self._spaces.items():
            entry = self._manifest.spaces.get(space)
            if entry is not None:
                changed |= index.refresh(entry)
        return changed

    def _commit(self, entry: SpaceEntry) -> None:
        """Record a space's new manifest entry (read, change one line, write atomically), then delete the
        space's files no generation in force names. Writers hold the folder's writer lock."""
        with writer_lock(self.folder):
            manifest = Manifest.read(self.folder)
            if manifest.spaces.get(entry.space) != entry:
                manifest.spaces[entry.space] = entry
                manifest.write(self.folder)
            self._manifest = manifest
            self._manifest_stamp = file_stamp(self.folder / MANIFEST_FILENAME)
            keep = {entry.main_file(self.folder), entry.delta_file(self.folder)}
            for path in space_files(self.folder, entry.slug):
                if path not in keep:
                    path.unlink(missing_ok=True)

    def drop(self, space: IndexSpace) -> None:
        """Forget a space's index and delete its files (its rows left the database)."""
        with writer_lock(self.folder):
            manifest = Manifest.read(self.folder)
            entry = manifest.spaces.pop(space, None)
            if entry is not None:
                manifest.write(self.folder)
                for path in space_files(self.folder, entry.slug):
                    path.unlink(missing_ok=True)
            self._manifest = manifest
            self._manifest_stamp = file_stamp(self.folder / MANIFEST_FILENAME)
            self._spaces.pop(space, None)

    # -- reads ---------------------------------------------------------------------------------------
    def search(
        self,
        vectors: np.ndarray,
        k: int,
        filter_ids: np.ndarray | list[int] | None = None,
        *,
        space: IndexSpace,
    ) -> SearchResult:
        """The k nearest stored patterns of each query vector within `space`, among `filter_ids` if given.

        Rows with fewer than k qualifying patterns are padded with id -1; a space without an index gives
        only padding. Build `filter_ids` with `attnlens.store.patterns.matching_pattern_ids`.
        """
        if k <= 0:
            raise InvalidInput(f"k must be positive, got {k}.")
        allowed = None if filter_ids is None else sorted_unique(filter_ids)
        for attempt in range(2):
            index = self.space(space)
            if index is None or index.count == 0:
                n = np.asarray(vectors).reshape(-1, np.asarray(vectors).shape[-1]).shape[0]
                return SearchResult.empty(n, k, self.settings.metric == "cosine")
            queries = prepare_vectors(vectors, dim=index.dim, cosine=index.cosine)
            if allowed is not None and len(allowed) == 0:
                return SearchResult.empty(len(queries), k, index.cosine)
            try:
                return index.search(queries, k, allowed)
            except IndexMissing:
                # A writer replaced this generation between our manifest read and the file read.
                if attempt:
                    raise
                self.reload_if_changed()
        raise AssertionError("unreachable")

    # -- the database --------------------------------------------------------------------------------
    def rebuild_from_db(self, store: Store, *, progress: bool = False, seed: int = 0) -> int:
        """Recreate every space's index from the database (and delete any other index file); returns
        the number of vectors indexed."""
        with writer_lock(self.folder):
            with store.session() as s:
                wanted = space_inferences(s)
            self.legacy_path.unlink(missing_ok=True)
            spaces = {IndexSpace(model, embedder) for model, embedder in wanted} | set(self.spaces())
            total = self.rebuild_spaces(store, sorted(spaces), progress=progress, seed=seed)
            for leftover in self.folder.glob("*.tmp") if self.folder.is_dir() else []:
                leftover.unlink(missing_ok=True)
        return total

    def rebuild_spaces(
        self, store: Store, spaces: list[IndexSpace], *, progress: bool = False, seed: int = 0
    ) -> int:
        """Recreate these spaces' indexes from the database (a space the database no longer has is
        dropped); returns the number of vectors indexed."""
        with writer_lock(self.folder):
            with store.session() as s:
                wanted = space_inferences(s)
            total = 0
            for space in spaces:
                inferences = wanted.get((space.model, space.embedder))
                if inferences is None:
                    if space in self._manifest.spaces:
                        self.drop(space)
                    continue
                # Nothing of the old files is read: the new generation replaces them, torn or not.
                entry = self._manifest.spaces.get(space) or SpaceEntry.new(space)
                index = SpaceIndex(
                    self.folder, self.settings, entry, self.store, self._commit, read_delta=False
                )
                self._spaces[space] = index
                total += index.rebuild_from_db(store, progress=progress, seed=seed, inferences=inferences)
        return total

    def unreadable_spaces(self) -> dict[IndexSpace, str]:
        """The spaces whose files cannot be read (missing, torn, not an index), each with why. Reads every
        file of every space, as a first search would."""
        damaged: dict[IndexSpace, str] = {}
        for space in self.spaces():
            try:
                held = self.space(space)  # reads the delta
                if held is not None:
                    held.main_index()
            except StoreError as exc:  # IndexMissing included
                self._spaces.pop(space, None)
                damaged[space] = exc.message
        return damaged

    def miscounted_spaces(self, store: Store) -> dict[IndexSpace, str]:
        """The spaces whose index holds fewer vectors than the database has head patterns of the
        inferences it was synced with, or more than the database has at all (after a sync, only a lost or
        damaged file explains either; rows a build added since are allowed for), each with the counts."""
        wrong: dict[IndexSpace, str] = {}
        with store.session() as s:
            for space in self.spaces():
                held = self.space(space)
                synced_up_to = self._manifest.spaces[space].max_inference_id
                at_least = space_patterns_up_to(s, space.model, space.embedder, synced_up_to)
                at_most = space_rows(s, space.model, space.embedder).count
                if held is not None and not at_least <= held.count <= at_most:
                    wrong[space] = (
                        f"the index holds {held.count:,} vectors; the database has {at_least:,} head "
                        f"patterns of the inferences it was synced with and {at_most:,} in all"
                    )
        return wrong

    def sync(self, store: Store) -> dict[str, Any]:
        """Make every space's index agree with the database; returns what was done, in all and per space.

        Cheap when the database only gained rows: one pass over the inference table, then the new rows'
        embeddings appended to their spaces' deltas."""
        with writer_lock(self.folder):
            self.reload_if_changed()
            with store.session() as s:
                wanted = space_inferences(s)
            if self.legacy_path.exists():
                self._adopt_legacy(store, wanted)
            per_space: dict[str, dict[str, Any]] = {}
            for space in self.spaces():
                if (space.model, space.embedder) not in wanted:
                    self.drop(space)
                    per_space[str(space)] = {"dropped": True}
            for (model, embedder), inferences in sorted(wanted.items(), key=lambda item: _order(item[0])):
                space = IndexSpace(model, embedder)
                index = self.space(space, create=True)
                assert index is not None  # created
                per_space[str(space)] = index.sync(store, inferences)
        done = [r for r in per_space.values() if not r.get("dropped")]
        return {
            "rebuilt": any(r.get("rebuilt") for r in done),
            "added": sum(r.get("added", 0) for r in done),
            "removed": sum(r.get("removed", 0) for r in done),
            "vectors": sum(r.get("vectors", 0) for r in done),
            "spaces": per_space,
        }

    def _adopt_legacy(self, store: Store, wanted: dict[tuple[str, str | None], SpaceInferences]) -> None:
        """The single index file of before issue 12: when the database holds one space and the file's width
        matches it, it becomes that space's main index (the sync then adds or drops what differs);
        otherwise it is deleted and each space is built from the database."""
        path = self.legacy_path
        try:
            if len(wanted) != 1 or self._manifest.spaces:
                raise StoreError("not adoptable")
            ((model, embedder),) = wanted
            with store.session() as s:
                dims = space_embedding_dims(s, model, embedder)
            legacy = read_index(path)
            if dims != [legacy.d]:
                raise StoreError("not adoptable")
            ids = stored_ids(legacy)
            space = IndexSpace(model, embedder)
            # An impossible fingerprint: the first sync compares every id and fixes what differs.
            entry = SpaceEntry.new(space).next_generation(
                main_count=len(ids),
                main_max_id=int(ids[-1]) if len(ids) else 0,
                dim=legacy.d,
                kind=index_kind(legacy),
                inferences=-1,
            )
            if len(ids):
                os.replace(path, entry.main_file(self.folder))
                self._commit(entry)
            log.info("adopted %s as the index of %s", path, space)
        except StoreError:
            log.info("replacing %s by one index per embedding space", path)
        path.unlink(missing_ok=True)
        temporary_path(path).unlink(missing_ok=True)

    def check(self, store: Store) -> IndexCheckReport:
        """Compare every space's index with the database: spaces, ids on one side only, ids held twice,
        widths, and (from the exact indexes) vectors."""
        return compare_with_database(self, store)


def _order(pair: tuple[str, str | None]) -> tuple[str, str]:
    return (pair[0], pair[1] or "")
