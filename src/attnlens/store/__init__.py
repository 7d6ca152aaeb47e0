"""The atlas database: SQLAlchemy models, the `Store` handle, migrations and the queries others call.

    store = open_store(settings)            # creates the data dir, migrates to the code's schema
    with store.session() as session:        # commits on success, rolls back on error
        ids = save_scenarios(session, scenarios, model_name="smollm2")

Head patterns: `attnlens.store.patterns` (save_inference, save_head_patterns, PatternFilter,
matching_pattern_ids, load_embeddings). Jobs: `attnlens.store.jobs`. Encodings: `attnlens.store.codecs`.
"""

from attnlens.store.engine import Store, make_engine, open_store
from attnlens.store.patterns import (
    PatternFilter,
    load_embeddings,
    matching_pattern_ids,
    save_head_patterns,
    save_inference,
)
from attnlens.store.scenarios import corpus_file_ids, save_scenarios

__all__ = [
    "PatternFilter",
    "Store",
    "corpus_file_ids",
    "load_embeddings",
    "make_engine",
    "matching_pattern_ids",
    "open_store",
    "save_head_patterns",
    "save_inference",
    "save_scenarios",
]
