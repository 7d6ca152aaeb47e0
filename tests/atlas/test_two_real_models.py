"""One atlas, two real models: SmolLM2-135M (30 x 9 heads) and Gemma 3 270M (18 x 4), mined from the same JDK
files, run, embedded by the shipped AP-MAE checkpoint into one store; the API then relates their heads."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from attnlens.config import Settings
from tests.conftest import JDK_SRC_ZIP, MODELS_CACHE
from tests.mining.conftest import needs_jdk

pytestmark = [pytest.mark.slow, pytest.mark.corpus, needs_jdk]
TASKS = ("identifiers", "closing_bracket")
PER_TASK = 6  # above the 5 patterns per head and task that a distance needs by default


@pytest.fixture(scope="module")
def two_real_models(tmp_path_factory, smollm2, gemma3):
    from attnlens.apmae.load import load_apmae
    from attnlens.atlas.build import BuildRequest, run_build
    from attnlens.atlas.indexing import sync_index
    from attnlens.store import open_store

    data = tmp_path_factory.mktemp("two-real-models") / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_CACHE)  # the converted caches, shared
    settings = Settings(data_dir=data, atlas={"build_demo": False})
    store = open_store(settings)
    apmae = load_apmae("default", "cpu")
    request = BuildRequest(corpus=str(JDK_SRC_ZIP), tasks=TASKS, per_task=PER_TASK, batch_size=4)
    reports = {
        model.info.name: run_build(
            settings, store, model, apmae.embed_with_errors, request, embedder="default"
        )
        for model in (smollm2, gemma3)
    }
    sync_index(settings, store)
    return settings, store, reports


def test_both_models_are_built_side_by_side(two_real_models):
    from attnlens.store.head_moments import model_embedders, shared_embedder
    from attnlens.store.inferences import atlas_models

    _, store, reports = two_real_models
    for name, grid in (("smollm2", 270), ("gemma3-270m", 72)):
        report = reports[name]
        assert report.failed == 0 and report.processed == PER_TASK * len(TASKS)
        assert report.head_patterns == report.processed * grid
    with store.session() as session:
        assert atlas_models(session) == ["gemma3-270m", "smollm2"]
        assert model_embedders(session, "gemma3-270m") == {"default": PER_TASK * len(TASKS)}
        assert shared_embedder(session, "smollm2", "gemma3-270m") == "default"


def test_the_api_relates_every_head_of_one_model_to_every_head_of_the_other(two_real_models):
    from attnlens.api import create_app
    from attnlens.service.local import LocalWorker

    settings, store, _ = two_real_models
    with TestClient(create_app(settings, LocalWorker(settings, store), store)) as client:
        ab = client.get("/api/cross-model", params={"model": "smollm2", "other": "gemma3-270m"})
        assert ab.status_code == 200, ab.text
        body = ab.json()
        assert body["tasks"] == sorted(TASKS) and body["embedder"] == "default"
        matrix = np.array(body["distances"], dtype=float)
        assert matrix.shape == (270, 72) and np.isfinite(matrix).all() and (matrix > 0).all()
        ba = np.array(
            client.get("/api/cross-model", params={"model": "gemma3-270m", "other": "smollm2"}).json()[
                "distances"
            ]
        )
        assert np.allclose(ba, matrix.T)
        # One head's nearest heads of the other model are the smallest entries of its row.
        (group,) = client.get("/api/heads/L1H2/related-across", params={"model": "smollm2", "k": 4}).json()
        assert group["model"] == "gemma3-270m" and math.isfinite(group["typical_distance"])
        row = matrix[[r["name"] for r in body["rows"]].index("L1H2")]
        expected = [body["columns"][j]["name"] for j in np.argsort(row, kind="stable")[:4]]
        assert [h["name"] for h in group["heads"]] == expected
