"""How big an atlas is: counts from the database and the index (cheap; used by health and the CLI)."""

from __future__ import annotations

from typing import Any

from attnlens.config import Settings
from attnlens.index import index_file_bytes
from attnlens.store import Store
from attnlens.store.inferences import atlas_counts as database_counts


def atlas_counts(settings: Settings, store: Store) -> dict[str, Any]:
    """Scenarios, inferences (and how many were right), head patterns, jobs by state, index bytes."""
    counts = database_counts(store)
    counts["index_file_bytes"] = index_file_bytes(settings.index_dir)
    return counts
