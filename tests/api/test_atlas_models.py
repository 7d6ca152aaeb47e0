"""GET /api/atlas/models on a private copy of the tiny atlas with a second model's completions (and a third
named by its hub id) written beside the tiny StarCoder2's: counts, grids, families and embedders checked
against the stored rows, the served model first, one model by name (404 for one the atlas does not hold), and
the `?model=` endpoints the pages call answering for the second model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from attnlens.api import create_app
from attnlens.heads import HeadRef
from attnlens.store import open_store, save_scenarios
from attnlens.store.models import MINED, HeadPattern, Inference
from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference
from tests.api.test_hostile_input import refused
from tests.store.fake_atlas import FakeScenario
from tests.store.second_model import SECOND_EMBEDDER, SECOND_MODEL, add_second_model

HUB_MODEL = "bigcode/starcoder2-3b"  # a preset's hub id: its family comes from the preset


@pytest.fixture(scope="module")
def two_models(private_atlas_client):
    """The private atlas with 8 inferences of SECOND_MODEL (2 x 3 heads), 3 of HUB_MODEL (1 x 2 heads) and one
    pasted inference of the served model."""
    client = private_atlas_client
    store = client.app.state.store
    add_second_model(store)
    add_second_model(store, HUB_MODEL, n=3, grid=(1, 2), embedder="hub-apmae", seed=9)
    served = client.app.state.settings.model.name
    refs = [HeadRef(layer, head) for layer in range(4) for head in range(4)]
    paste = FakeScenario("pasted", "pasted/1.java", "f" * 64, "identifiers", "identifier", 0, 1, "x", [5],
                         [1, 2, 3], alignment="pasted")  # fmt: skip
    with store.session() as session:
        (scenario_id,) = save_scenarios(session, [paste], model_name=served)
        pasted = save_inference(session, model_name=served, scenario_id=scenario_id, source="pasted")
        n = len(refs)
        save_head_patterns(session, pasted, refs, np.zeros((n, 32)), np.zeros((n, 8, 8), np.uint8),
                           {name: np.zeros(n) for name in STAT_COLUMNS})  # fmt: skip
    return client


def stored(client: TestClient, model: str) -> dict[str, Any]:
    """What the database holds of one model, counted here independently of the endpoint."""
    with client.app.state.store.session() as session:
        mined = (Inference.model_name == model) & (Inference.source == MINED)
        inferences = session.scalar(select(func.count()).select_from(Inference).where(mined))
        patterns, top_layer, top_head = session.execute(
            select(func.count(), func.max(HeadPattern.layer), func.max(HeadPattern.head))
            .join(Inference, Inference.id == HeadPattern.inference_id)
            .where(mined)
        ).one()
        embedders = session.execute(
            select(Inference.embedder, func.count()).where(mined).group_by(Inference.embedder)
        ).all()
    return {
        "inferences": inferences, "head_patterns": patterns, "n_layers": top_layer + 1,
        "n_heads": top_head + 1, "embedders": [{"embedder": e, "inferences": n} for e, n in embedders],
    }  # fmt: skip


def test_every_model_with_its_counts_grid_family_and_embedders(two_models, tiny_model):
    client = two_models
    served = client.app.state.settings.model.name
    listed = client.get("/api/atlas/models").json()
    # The served model first, then the others by name.
    assert [m["name"] for m in listed] == [served, HUB_MODEL, SECOND_MODEL]
    by_name = {m["name"]: m for m in listed}
    for name, model in by_name.items():
        assert model == {**model, **stored(client, name)}, name
        assert model["served"] == (name == served)
    mine = by_name[served]
    assert (mine["n_layers"], mine["n_heads"]) == (tiny_model.info.n_layers, tiny_model.info.n_heads)
    assert mine["family"] == "starcoder2" and mine["pasted_inferences"] == 1
    second = by_name[SECOND_MODEL]
    assert second["inferences"] == 8 and second["head_patterns"] == 8 * 6
    assert (second["n_layers"], second["n_heads"]) == (2, 3) and second["pasted_inferences"] == 0
    assert second["family"] is None  # no preset, not loaded: unknown
    assert second["embedders"] == [{"embedder": SECOND_EMBEDDER, "inferences": 8}]
    assert by_name[HUB_MODEL]["family"] == "starcoder2"  # by the preset whose hub id it is
    assert (by_name[HUB_MODEL]["n_layers"], by_name[HUB_MODEL]["n_heads"]) == (1, 2)


def test_one_model_by_name_and_404_for_a_model_the_atlas_does_not_hold(two_models):
    client = two_models
    listed = {m["name"]: m for m in client.get("/api/atlas/models").json()}
    for name in (SECOND_MODEL, HUB_MODEL):  # a hub id's `/` stands as it is in the path
        assert client.get(f"/api/atlas/models/{name}").json() == listed[name]
    body = refused(client.get("/api/atlas/models/no-such-model"), 404)
    assert body["code"] == "not_found" and "no-such-model" in body["error"] and SECOND_MODEL in body["error"]
    refused(client.get("/api/atlas/models/bigcode/starcoder2-15b"), 404)  # a preset the atlas lacks
    refused(client.get(f"/api/atlas/models/{'x' * 201}"), 422)


def test_the_pages_endpoints_answer_for_the_second_model(two_models):
    client = two_models
    heads = client.get("/api/heads", params={"model": SECOND_MODEL}).json()
    assert (heads["model"], heads["n_layers"], heads["n_heads"]) == (SECOND_MODEL, 2, 3)
    assert heads["n_inferences"] == 8 and len(heads["heads"]) == 6
    tasks = {t["name"]: t for t in client.get("/api/tasks", params={"model": SECOND_MODEL}).json()}
    assert (tasks["identifiers"]["inferences"], tasks["closing_bracket"]["inferences"]) == (4, 4)
    page = client.get("/api/inferences", params={"model": SECOND_MODEL}).json()
    assert page["total"] == 8 and {i["model_name"] for i in page["items"]} == {SECOND_MODEL}


def test_a_pattern_of_another_model_is_not_recomputed_on_the_served_one(two_models):
    """The worker would recompute the served model's attention on the other model's prompt: refused."""
    client = two_models
    inference = client.get("/api/inferences", params={"model": SECOND_MODEL, "limit": 1}).json()["items"][0]
    pattern = client.get(f"/api/inferences/{inference['id']}/heads").json()["heads"][0]["id"]
    body = refused(client.get(f"/api/patterns/{pattern}"), 400)
    assert SECOND_MODEL in body["error"] and "Serve that model" in body["error"]


class ServedOnly:
    """A worker that holds its model and answers only its status (this test asks nothing else)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def status(self) -> dict[str, Any]:
        return {"state": "ready", "model_name": self.name, "model": None, "apmae": None}


def test_an_empty_atlas_lists_the_served_model_with_nothing_yet(settings):
    store = open_store(settings)
    with TestClient(create_app(settings, ServedOnly(settings.model.name), store)) as client:
        listed = client.get("/api/atlas/models").json()
        one = client.get(f"/api/atlas/models/{settings.model.name}").json()
    assert listed == [one]
    assert one == {
        "name": settings.model.name, "served": True, "family": "l2r", "inferences": 0, "pasted_inferences": 0,
        "head_patterns": 0, "n_layers": None, "n_heads": None, "embedders": [],
    }  # fmt: skip
