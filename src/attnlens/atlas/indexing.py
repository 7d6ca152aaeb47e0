"""Keeping the FAISS indexes (one per embedding space) in step with the database, the source of truth.

A build commits inferences to the database first and syncs the index less often, so after a crash the
index may lag behind; `sync_index` adds what it lacks and drops what the database no longer has. When the
database only gained rows (a paste, a build's progress), a sync reads the inference table once and
appends the new rows' embeddings to their space's small delta index: its cost does not grow with the
atlas (docs/benchmarks.md, "Store and index").
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from attnlens.config import Settings
from attnlens.errors import StoreError
from attnlens.index import PatternIndex
from attnlens.index.spaces import MANIFEST_FILENAME, IndexSpace
from attnlens.store import Store

log = logging.getLogger(__name__)
# Index writers take turns: threads of one process here, processes through the index folder's file lock
# (taken inside PatternIndex.sync).
_WRITE_LOCK = threading.Lock()


def sync_index(settings: Settings, store: Store, index: PatternIndex | None = None) -> dict[str, Any]:
    """Make the saved indexes agree with the database; returns what was done (in all and per space)."""
    with _WRITE_LOCK:
        # Opening reads the manifest; a space's small delta is read when the sync reaches it, its main
        # index only when the sync must fold, compare every id or rebuild.
        index = index if index is not None else PatternIndex.open(settings, store)
        result = index.sync(store)
    if result["added"] or result["removed"] or result["rebuilt"]:
        log.info(
            "index synced: %d added, %d removed%s (%d vectors)",
            result["added"],
            result["removed"],
            ", rebuilt" if result["rebuilt"] else "",
            result["vectors"],
        )
    return result


def open_repaired_index(settings: Settings, store: Store) -> PatternIndex:
    """The atlas's indexes, checked against the database before anything is served: an unreadable
    manifest is set aside and every space rebuilt; a space whose files are missing or torn is rebuilt; a
    lagging index (a crash between a database commit and the next sync) is synced; a space that still holds
    another number of vectors than the database has patterns (a lost delta file) is rebuilt. Each repair is
    logged as a warning with its reason. The database is the source of truth; nothing is lost."""
    with _WRITE_LOCK:
        try:
            index = PatternIndex.open(settings, store)
        except StoreError as exc:
            manifest = settings.index_dir / MANIFEST_FILENAME
            aside = manifest.with_name(f"{manifest.name}.damaged")
            os.replace(manifest, aside)
            log.warning("%s Set aside as %s; rebuilding every index from the database.", exc.message, aside)
            index = PatternIndex.open(settings, store)
            index.rebuild_from_db(store, progress=True)
        _rebuild(index, store, index.unreadable_spaces(), "unreadable")
    sync_index(settings, store, index)
    with _WRITE_LOCK:
        _rebuild(index, store, index.miscounted_spaces(store), "out of step with the database")
    return index


def _rebuild(index: PatternIndex, store: Store, why: dict[IndexSpace, str], what: str) -> None:
    if not why:
        return
    for space, reason in why.items():
        log.warning("the index of %s is %s (%s); rebuilding it from the database", space, what, reason)
    index.rebuild_spaces(store, sorted(why), progress=True)
