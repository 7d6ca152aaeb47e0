"""Pasted code is kept apart from the atlas (issue 12, defect 2): analyses run after pastes never see them,
a paste can be analysed without writing anything, stored pastes can be deleted (index entries included),
and mined rows cannot. Each test runs on a private copy of the tiny atlas."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from attnlens.api import create_app
from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.contracts.jobs import ATLAS_CLUSTER, ATLAS_MAP, TRAIN_PREDICTORS
from attnlens.index import PatternIndex
from attnlens.service.jobs import run_job_here
from attnlens.service.local import LocalWorker
from attnlens.store import open_store
from attnlens.store.analyses import latest_clustering
from attnlens.store.analysis_rows import Selection, load_task_rows, selected_heads
from attnlens.store.jobs import enqueue_job
from attnlens.store.models import ClusterAssignment, CorpusFile, HeadPattern, Inference, MapPoint, Scenario
from tests.api.test_analyze import JAVA
from tests.api.test_maps_clusters import N_PATTERNS, copy_tiny_atlas
from tests.conftest import TINY_TASKS

N_MINED = 12  # the tiny atlas's inferences
SELECTION = {"start": JAVA.index("right ? left"), "end": JAVA.index("right ? left") + 5}
CURSOR = {"cursor": JAVA.index("public int max"), "task": "identifiers"}


@pytest.fixture(scope="module")
def private(tiny_atlas, tmp_path_factory):
    """(client, settings, store) over a private copy of the tiny atlas; the worker holds the tiny model."""
    settings = copy_tiny_atlas(tiny_atlas, tmp_path_factory.mktemp("pasted") / "data")
    store = open_store(settings)
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        yield client, settings, store


def table_counts(store) -> dict[str, int]:
    with store.session() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (CorpusFile, Scenario, Inference, HeadPattern)
        }


def index_state(settings, store) -> tuple[int, bool]:
    """(vectors in the index, whether it agrees with the database: every stored pattern, nothing else)."""
    index = PatternIndex.open(settings, store)
    return index.count, index.check(store).ok


def analyze(client, hole: dict, **extra) -> dict:
    response = client.post("/api/analyze", json={"code": JAVA, "hole": hole, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_analyze_without_storing_writes_nothing_and_returns_completion_and_grid(private):
    client, settings, store = private
    before, indexed = table_counts(store), index_state(settings, store)
    assert indexed == (N_PATTERNS, True)
    body = analyze(client, SELECTION, store=False)
    assert table_counts(store) == before and index_state(settings, store) == indexed
    assert body["inference_id"] is None and body["target_text"].strip() == "right"
    assert isinstance(body["first_token_correct"], bool) and 0 <= body["expected_token_prob"] <= 1
    assert body["completion_text"] and "predictors train" in body["prediction_unavailable"]
    grid = body["grid"]
    assert grid["inference_id"] is None and (grid["n_layers"], grid["n_heads"]) == (4, 4)
    assert [c["name"] for c in grid["heads"]] == [f"L{la}H{h}" for la in range(4) for h in range(4)]
    assert {c["id"] for c in grid["heads"]} == {None}
    size = grid["thumbnail_size"]
    images = np.frombuffer(base64.b64decode(grid["thumbnails"]), dtype=np.uint8)
    assert images.size == 16 * size * size and images.any()

    # The same hole stored: the same completion, and the grid its stored rows give is the same grid.
    stored = analyze(client, SELECTION)
    assert isinstance(stored["inference_id"], int)
    assert table_counts(store)["inference"] == before["inference"] + 1
    for key in ("target_text", "completion_text", "first_token_correct", "expected_token_prob"):
        assert stored[key] == body[key], key
    assert stored["grid"]["thumbnails"] == grid["thumbnails"]
    for mine, theirs in zip(grid["heads"], stored["grid"]["heads"], strict=True):
        assert {k: v for k, v in mine.items() if k != "id"} == {k: v for k, v in theirs.items() if k != "id"}
    # Analysing it again without storing still writes nothing and still answers.
    before = table_counts(store)
    assert analyze(client, SELECTION, store=False)["inference_id"] is None
    assert table_counts(store) == before


def test_list_tasks_and_health_tell_pasted_from_mined(private):
    client, _settings, _store = private
    pasted = analyze(client, CURSOR)
    detail = client.get(f"/api/inferences/{pasted['inference_id']}").json()
    assert detail["source"] == "pasted" and detail["task"] == "identifiers"
    listed = client.get("/api/inferences", params={"source": "pasted", "limit": 200}).json()
    assert pasted["inference_id"] in {i["id"] for i in listed["items"]}
    assert {i["source"] for i in listed["items"]} == {"pasted"}
    mined = client.get("/api/inferences", params={"source": "mined", "limit": 200}).json()
    assert mined["total"] == N_MINED and {i["source"] for i in mined["items"]} == {"mined"}
    everything = client.get("/api/inferences", params={"limit": 200}).json()
    assert everything["total"] == N_MINED + listed["total"]
    assert client.get("/api/inferences", params={"source": "other"}).status_code == 422

    tasks = {t["name"]: t for t in client.get("/api/tasks").json()}
    mined_identifiers = client.get(
        "/api/inferences", params={"source": "mined", "task": "identifiers", "limit": 1}
    ).json()["total"]
    pasted_identifiers = client.get(
        "/api/inferences", params={"source": "pasted", "task": "identifiers", "limit": 1}
    ).json()["total"]
    assert tasks["identifiers"]["inferences"] == mined_identifiers == 3
    assert tasks["identifiers"]["pasted"] == pasted_identifiers >= 1
    atlas = client.get("/api/health").json()["atlas"]
    assert atlas["inferences"] == N_MINED and atlas["head_patterns"] == N_PATTERNS
    assert atlas["pasted_inferences"] == listed["total"]
    assert atlas["pasted_head_patterns"] == 16 * listed["total"]


def test_delete_removes_a_paste_and_the_neighbours_no_longer_return_it(private):
    client, settings, store = private
    # Two pastes; the kept one's patterns search the space the deleted one's were in (the worker's AP-MAE
    # checkpoint, which differs from the name the tiny atlas was built under).
    kept = analyze(client, {"cursor": JAVA.index("this.left"), "task": "identifiers"})
    body = analyze(client, {"cursor": JAVA.index("this.right"), "task": "identifiers"})
    inference_id = body["inference_id"]
    ids = [c["id"] for c in body["grid"]["heads"]]
    count, agrees = index_state(settings, store)
    assert agrees  # a stored paste is indexed
    query = kept["grid"]["heads"][5]["id"]  # L1H1

    def neighbours(**filters) -> set[int]:
        response = client.get(f"/api/patterns/{query}/neighbors", params={"k": 200, **filters})
        assert response.status_code == 200, response.text
        return {h["id"] for h in response.json()["hits"]}

    assert ids[5] in neighbours(layer=1, head=1) and ids[5] in neighbours()
    response = client.delete(f"/api/inferences/{inference_id}")
    assert response.status_code == 200, response.text
    assert response.json() == {"inference_id": inference_id, "head_patterns": 16}
    assert client.get(f"/api/inferences/{inference_id}").status_code == 404
    assert client.get(f"/api/inferences/{inference_id}/heads").status_code == 404
    assert client.get(f"/api/patterns/{ids[0]}/neighbors").status_code == 404
    remaining = neighbours()
    assert remaining and not set(ids) & remaining and not set(ids) & neighbours(layer=1, head=1)
    assert index_state(settings, store) == (count - 16, True)  # its 16 vectors left the index
    with store.session() as session:
        assert session.scalar(select(func.count()).where(HeadPattern.id.in_(ids))) == 0
    assert client.get(f"/api/inferences/{kept['inference_id']}").json()["source"] == "pasted"
    again = client.delete(f"/api/inferences/{inference_id}")
    assert again.status_code == 404 and again.json()["code"] == "not_found"


def test_mined_rows_cannot_be_deleted(private):
    client, settings, store = private
    before, indexed = table_counts(store), index_state(settings, store)
    mined = client.get("/api/inferences", params={"source": "mined", "limit": 1}).json()["items"][0]
    response = client.delete(f"/api/inferences/{mined['id']}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_input"
    assert body["error"] == "only pasted code can be deleted; mined rows belong to the atlas."
    assert client.get(f"/api/inferences/{mined['id']}").status_code == 200
    assert table_counts(store) == before and index_state(settings, store) == indexed
    unknown = client.delete("/api/inferences/987654321")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


@pytest.mark.slow
def test_clustering_map_and_predictor_training_after_pastes_leave_them_out(tiny_atlas, tmp_path_factory):
    """Pastes (a selected span, whose task is `selection`, and a cursor hole of `identifiers`) stored
    before the analysis jobs run: the clustering, the map and the predictors' rows hold only the atlas's
    mined patterns, and a later paste still joins the clusters by kNN vote."""
    settings = copy_tiny_atlas(tiny_atlas, tmp_path_factory.mktemp("pasted-then-analysed") / "data")
    store = open_store(settings)
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    # As in a real deployment, the atlas and the pastes share one AP-MAE checkpoint (the tiny atlas was
    # built under another name, which alone would keep pastes out of its analyses).
    with store.session() as session:
        session.execute(update(Inference).values(embedder=worker.embedder_name))
    with TestClient(create_app(settings, worker, store)) as client:
        pasted = [analyze(client, SELECTION)["inference_id"], analyze(client, CURSOR)["inference_id"]]
        results = {}
        for kind in (ATLAS_CLUSTER, ATLAS_MAP, TRAIN_PREDICTORS):
            job = run_job_here(settings, store, enqueue_job(store, kind, {}), None, JOB_HANDLERS[kind])
            assert job.state == "succeeded", job.error
            results[kind] = job.result
        with store.session() as session:
            pasted_patterns = set(
                session.scalars(select(HeadPattern.id).where(HeadPattern.inference_id.in_(pasted)))
            )
            assert len(pasted_patterns) == 32
            assigned = set(session.scalars(select(ClusterAssignment.head_pattern_id)))
            mapped = set(session.scalars(select(MapPoint.head_pattern_id)))
        assert len(assigned) == len(mapped) == N_PATTERNS == results[ATLAS_MAP]["points"]
        assert not assigned & pasted_patterns and not mapped & pasted_patterns
        clusters = client.get("/api/heads/L1H2/clusters").json()
        assert sum(c["size"] for c in clusters) == N_MINED
        assert all(set(c["tasks"]) <= set(TINY_TASKS) for c in clusters)
        assert client.get("/api/maps/latest").json()["total"] == N_PATTERNS

        result = results[TRAIN_PREDICTORS]
        seen = {row["task"] for row in result["trained"]} | set(result["skipped"])
        assert "selection" not in seen and seen <= {*TINY_TASKS, "noise"}
        clustering = latest_clustering(store, settings.model.name)
        selection = Selection(settings.model.name, clustering.embedder)
        with store.session() as session:
            heads = selected_heads(session, selection)
            rows = load_task_rows(session, selection, "identifiers", clustering.id, heads)
        assert len(rows.inference_ids) + rows.dropped == 3  # the mined identifiers only
        assert not set(rows.inference_ids.tolist()) & set(pasted)

        later = analyze(client, {"cursor": JAVA.index("this.left"), "task": "identifiers"}, store=False)
        assert later["clustering_id"] == clustering.id
        assert None not in {c["cluster"] for c in later["grid"]["heads"]}  # every head placed (noise: -1)
