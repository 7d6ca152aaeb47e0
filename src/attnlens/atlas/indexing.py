"""Keeping the FAISS index in step with the database, which is the source of truth.

A build commits inferences to the database first and saves the index less often, so after a crash the
index may lag behind; `sync_index` adds what it lacks and drops what the database no longer has.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from attnlens.config import Settings
from attnlens.index import PatternIndex
from attnlens.store import Store
from attnlens.store.patterns import load_embeddings

log = logging.getLogger(__name__)
_CHUNK = 20_000
# Index writers of one process take turns (a build's job thread and pasted-code analyses). Across
# processes saves are atomic and a lost update heals at the next sync, because the database decides.
_WRITE_LOCK = threading.Lock()


def sync_index(settings: Settings, store: Store, index: PatternIndex | None = None) -> dict[str, Any]:
    """Make the saved index agree with the database; returns what was done."""
    with _WRITE_LOCK:
        return _sync(settings, store, index)


def _sync(settings: Settings, store: Store, index: PatternIndex | None) -> dict[str, Any]:
    index = index if index is not None else PatternIndex.open(settings, store)
    report = index.check(store)
    if index.needs_rebuild or (
        report.index_dim is not None and report.database_dims and report.database_dims != [report.index_dim]
    ):
        count = index.rebuild_from_db(store)
        index.save()
        return {"rebuilt": True, "vectors": count}
    added = removed = 0
    if len(report.only_in_index):
        removed = index.remove(report.only_in_index)
    missing = report.only_in_database
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start : start + _CHUNK]
        with store.session() as session:
            vectors = load_embeddings(session, chunk)
        index.add(chunk, vectors)
        added += len(chunk)
    if added or removed:
        index.save()
        log.info("index synced: %d added, %d removed (%d vectors)", added, removed, index.count)
    return {"rebuilt": False, "added": added, "removed": removed, "vectors": index.count}
