"""The atlas database: SQLAlchemy models, the `Store` handle, migrations and the queries others call.

    store = open_store(settings)            # creates the data dir, migrates to the code's schema
    with store.session() as session:        # commits on success, rolls back on error
        ids = save_scenarios(session, scenarios, model_name="smollm2")
"""

from attnlens.store.engine import Store, make_engine, open_store
from attnlens.store.scenarios import corpus_file_ids, save_scenarios

__all__ = ["Store", "corpus_file_ids", "make_engine", "open_store", "save_scenarios"]
