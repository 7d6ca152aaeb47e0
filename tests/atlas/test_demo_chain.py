"""The demo atlas queued on an empty data dir: its build, then every analysis the pages show, once."""

from __future__ import annotations

from attnlens.atlas.build_job import queue_demo_build
from attnlens.contracts.jobs import (
    ATLAS_BUILD,
    ATLAS_CLUSTER,
    ATLAS_MAP,
    PATTERN_FAMILIES,
    TRAIN_PREDICTORS,
)
from attnlens.store import open_store
from attnlens.store.jobs import list_jobs
from tests.conftest import JAVA_FIXTURES


def test_the_demo_chain_queues_the_build_then_every_analysis_once(settings):
    mine = settings.model_copy(
        update={"atlas": settings.atlas.model_copy(update={"demo_corpus": str(JAVA_FIXTURES)})}
    )
    store = open_store(mine)
    assert queue_demo_build(mine, store) is not None
    assert queue_demo_build(mine, store) is None  # a second start queues nothing
    kinds = [job.kind for job in sorted(list_jobs(store, limit=100), key=lambda j: j.id)]
    assert kinds == [ATLAS_BUILD, ATLAS_CLUSTER, ATLAS_MAP, TRAIN_PREDICTORS, PATTERN_FAMILIES]
