"""GET /api/maps/latest names each point's completion (`points.inference`), what the map page hides with
"exclude this completion": over a copy of the tiny atlas with a real (PCA) map written into its SQLite file,
checked against the head_pattern table, for the whole map and for a deterministic sample of it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from attnlens.api import create_app
from attnlens.service.local import LocalWorker
from attnlens.store import open_store
from attnlens.store.models import HeadPattern, MapPoint
from tests.browser.conftest import write_clustering_and_map
from tests.conftest import copy_atlas


@pytest.fixture(scope="module")
def mapped(tiny_atlas, tmp_path_factory):
    """(client, store) over a private copy of the tiny atlas with a clustering and a map."""
    settings = tiny_atlas[0]
    data = tmp_path_factory.mktemp("map-inference") / "data"
    copy_atlas(settings.data_dir, data)
    mine = settings.model_copy(update={"data_dir": data})
    store = open_store(mine)
    write_clustering_and_map(store, mine.model.name)
    with TestClient(create_app(mine, LocalWorker(mine), store)) as client:
        yield client, store


def completions(store) -> dict[int, int]:
    """Pattern id -> inference id of every point on the map, read from the database."""
    with store.session() as session:
        return dict(
            session.execute(
                select(HeadPattern.id, HeadPattern.inference_id).join(
                    MapPoint, MapPoint.head_pattern_id == HeadPattern.id
                )
            ).all()
        )


def test_every_point_names_its_completion(mapped):
    client, store = mapped
    body = client.get("/api/maps/latest").json()
    points = body["points"]
    truth = completions(store)
    assert body["shown"] == body["total"] == len(truth)
    assert len(points["inference"]) == len(points["id"]) == body["shown"]
    assert [truth[pid] for pid in points["id"]] == points["inference"]
    # Each completion brings every head of the model: 4 layers x 4 heads in the tiny model.
    per_completion: dict[int, int] = {}
    for inference in points["inference"]:
        per_completion[inference] = per_completion.get(inference, 0) + 1
    assert len(per_completion) > 1 and set(per_completion.values()) == {16}


def test_a_sample_of_the_map_still_names_each_points_completion(mapped):
    client, store = mapped
    truth = completions(store)
    sample = client.get("/api/maps/latest", params={"max_points": 40}).json()
    assert sample["shown"] < sample["total"] == len(truth)
    points = sample["points"]
    assert {len(column) for column in points.values()} == {sample["shown"]}
    assert [truth[pid] for pid in points["id"]] == points["inference"]
    assert len(set(points["inference"])) > 1  # a sample of several completions, each point with its own


def test_the_openapi_schema_describes_the_column(mapped):
    client, _store = mapped
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["MapPoints"]
    assert schema["properties"]["inference"]["type"] == "array"
    assert "inference" in schema["required"]
