"""Keeping the FAISS indexes (one per embedding space) in step with the database, the source of truth.

A build commits inferences to the database first and syncs the index less often, so after a crash the
index may lag behind; `sync_index` adds what it lacks and drops what the database no longer has. When the
database only gained rows (a paste, a build's progress), a sync reads the inference table once and
appends the new rows' embeddings to their space's small delta index: its cost does not grow with the
atlas (docs/benchmarks.md, "Store and index").
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from attnlens.config import Settings
from attnlens.index import PatternIndex
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
