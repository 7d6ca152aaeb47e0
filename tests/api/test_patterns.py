"""Full patterns recomputed by the worker, nearest patterns, search by upload, ablation through the API."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from attnlens.api import create_app
from attnlens.atlas.indexing import sync_index
from attnlens.service.local import LocalWorker
from attnlens.store import open_store
from attnlens.store.codecs import unpack_embedding
from attnlens.store.models import HeadPattern, Inference
from tests.index.space_rows import add_inferences


class AtlasLabelledWorker(LocalWorker):
    """The tiny atlas's rows name their embedder `tiny-apmae` (tests/conftest.py), not the checkpoint
    path a LocalWorker reports; searches by upload look in the worker's space, so this worker reports
    the name the atlas was written with."""

    def __init__(self, settings, embedder: str) -> None:
        super().__init__(settings)
        self._label = embedder

    @property
    def embedder_name(self) -> str:
        return self._label


@pytest.fixture(scope="module")
def atlas_client(tiny_atlas):
    settings, store, _report = tiny_atlas
    with store.session() as session:
        (embedder,) = set(session.scalars(select(Inference.embedder).distinct()))
    worker = AtlasLabelledWorker(settings, embedder)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        yield client


@pytest.fixture(scope="module")
def one_grid(atlas_client):
    first = atlas_client.get("/api/inferences", params={"task": "identifiers", "limit": 1}).json()["items"][0]
    return first, atlas_client.get(f"/api/inferences/{first['id']}/heads").json()


def test_full_pattern_is_a_causal_softmax_with_token_labels(atlas_client, one_grid):
    _, grid = one_grid
    cell = grid["heads"][5]
    body = atlas_client.get(f"/api/patterns/{cell['id']}").json()
    values = np.asarray(body["values"])
    assert values.shape == (256, 256) and len(body["tokens"]) == 256
    assert np.allclose(values.sum(1), 1, atol=2e-3)
    assert np.triu(values, 1).max() == 0
    assert body["name"] == cell["name"] and body["stats"]["entropy"] == pytest.approx(cell["entropy"])
    again = atlas_client.get(f"/api/patterns/{cell['id']}").json()
    assert again["values"] == body["values"]


def test_neighbors_are_sorted_filtered_and_exclude_the_query(atlas_client, one_grid, tiny_atlas):
    _, store, _ = tiny_atlas
    _, grid = one_grid
    query = grid["heads"][0]
    hits = atlas_client.get(f"/api/patterns/{query['id']}/neighbors", params={"k": 8}).json()["hits"]
    assert len(hits) == 8 and query["id"] not in [h["id"] for h in hits]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    with store.session() as s:
        q = unpack_embedding(s.get(HeadPattern, query["id"]).embedding)
        h = unpack_embedding(s.get(HeadPattern, hits[0]["id"]).embedding)
    assert scores[0] == pytest.approx(float(q @ h / np.linalg.norm(q) / np.linalg.norm(h)), abs=2e-3)
    same_head = atlas_client.get(
        f"/api/patterns/{query['id']}/neighbors", params={"k": 5, "layer": 2, "head": 1, "task": "random"}
    ).json()["hits"]
    assert same_head and all(x["name"] == "L2H1" and x["task"] == "random" for x in same_head)
    assert atlas_client.get("/api/patterns/999999/neighbors").status_code == 404


def test_search_by_uploaded_pattern_finds_the_pattern_itself(atlas_client, one_grid):
    _, grid = one_grid
    cell = grid["heads"][9]
    values = atlas_client.get(f"/api/patterns/{cell['id']}").json()["values"]
    hits = atlas_client.post("/api/patterns/search", json={"values": values, "k": 3}).json()["hits"]
    assert hits[0]["id"] == cell["id"] and hits[0]["score"] > 0.999
    upper = np.tril(np.ones((256, 256))) / np.arange(1, 257)[:, None]
    upper[0, 5] = 0.5
    bad = atlas_client.post("/api/patterns/search", json={"values": upper.tolist()})
    assert bad.status_code == 400 and "causal" in bad.json()["error"]
    small = atlas_client.post("/api/patterns/search", json={"values": [[1.0]]})
    assert small.status_code == 400 and "256 x 256" in small.json()["error"]
    wrong_type = atlas_client.post("/api/patterns/search", json={"values": "not a matrix"})
    assert wrong_type.status_code == 422 and wrong_type.json()["code"] == "invalid_request"


def test_ablating_nothing_through_the_api_reproduces_the_baseline(atlas_client, one_grid):
    first, _ = one_grid
    body = atlas_client.post(f"/api/inferences/{first['id']}/ablations", json={"heads": []}).json()
    assert body["changed"] is False and body["kl_at_hole"] == 0.0 and body["delta_p_expected"] == 0.0
    assert body["baseline_text"] == body["ablated_text"]
    assert body["baseline_text"].startswith(first["completion_text"])


def test_ablating_heads_reports_the_change(atlas_client, one_grid):
    first, _ = one_grid
    heads = [f"L{a}H{b}" for a in range(4) for b in range(4)]
    body = atlas_client.post(
        f"/api/inferences/{first['id']}/ablations", json={"heads": heads, "max_new_tokens": 4}
    ).json()
    assert body["heads"] == sorted(heads, key=lambda n: (int(n[1:].split("H")[0]), int(n.split("H")[1])))
    assert body["kl_at_hole"] > 0 and body["p_expected_baseline"] != body["p_expected_ablated"]
    bad = atlas_client.post(f"/api/inferences/{first['id']}/ablations", json={"heads": ["L9H0"]})
    assert bad.status_code == 422 and bad.json()["code"] == "head_out_of_range"
    junk = atlas_client.post(f"/api/inferences/{first['id']}/ablations", json={"heads": ["layer one"]})
    assert junk.status_code == 422 and "L<layer>H<head>" in junk.json()["error"]
    big = atlas_client.post(
        f"/api/inferences/{first['id']}/ablations", json={"heads": [], "max_new_tokens": 10_000}
    )
    assert big.status_code == 413


class SpaceWorker:
    """A worker stand-in that embeds every upload as `vector` with checkpoint `checkpoint`."""

    def __init__(self, checkpoint: str, vector: np.ndarray) -> None:
        self.checkpoint, self.vector = checkpoint, vector

    def status(self) -> dict[str, Any]:
        apmae = {"checkpoint": self.checkpoint, "embedding_dim": len(self.vector)}
        return {"state": "ready", "model_name": "smollm2", "model": {"name": "smollm2"}, "apmae": apmae}

    def embed_pattern(self, pattern: np.ndarray) -> np.ndarray:
        return self.vector


def test_neighbours_and_uploads_search_only_their_own_embedding_space(settings):
    """Three checkpoints' embeddings of one model: ckpt-a and ckpt-c are both 32-d and ckpt-c's patterns
    sit on ckpt-a's very centres (one shared index would return them as ckpt-a's neighbours); ckpt-b is
    16-d. Each query gets hits of its own space only, and every space is searchable."""
    store = open_store(settings)
    a_ids, _ = add_inferences(store, model="smollm2", embedder="ckpt-a", dim=32, n=6, seed=1)
    b_ids, b_vectors = add_inferences(store, model="smollm2", embedder="ckpt-b", dim=16, n=6, seed=2)
    c_ids, c_vectors = add_inferences(store, model="smollm2", embedder="ckpt-c", dim=32, n=6, seed=3)
    sync_index(settings, store)
    spaces = {"ckpt-a": set(a_ids.tolist()), "ckpt-b": set(b_ids.tolist()), "ckpt-c": set(c_ids.tolist())}
    with TestClient(create_app(settings, SpaceWorker("ckpt-c", c_vectors[4]), store)) as client:
        for embedder, ids in spaces.items():
            query = sorted(ids)[4]
            hits = client.get(f"/api/patterns/{query}/neighbors", params={"k": 50}).json()["hits"]
            assert len(hits) == 50 and {h["id"] for h in hits} <= ids - {query}, embedder
        upload = np.tril(np.ones((256, 256))) / np.arange(1, 257)[:, None]
        hits = client.post("/api/patterns/search", json={"values": upload.tolist(), "k": 20}).json()["hits"]
        assert len(hits) == 20 and {h["id"] for h in hits} <= spaces["ckpt-c"]
        assert hits[0]["id"] == c_ids[4] and hits[0]["score"] == pytest.approx(1.0, abs=1e-3)
    with TestClient(create_app(settings, SpaceWorker("ckpt-b", b_vectors[0]), store)) as client:
        hits = client.post("/api/patterns/search", json={"values": upload.tolist(), "k": 5}).json()["hits"]
        assert hits[0]["id"] == b_ids[0] and {h["id"] for h in hits} <= spaces["ckpt-b"]
    with TestClient(create_app(settings, SpaceWorker("never-used", c_vectors[4]), store)) as client:
        hits = client.post("/api/patterns/search", json={"values": upload.tolist(), "k": 5}).json()["hits"]
        assert hits == []  # nothing embedded by this checkpoint: no neighbours, rather than another's


def test_a_patterns_stored_thumbnail_comes_from_the_database_without_the_model(tiny_atlas, one_grid):
    """What the map shows on hover: the grid's own thumbnail of that pattern, answered even by a server whose
    model has not loaded (so no model call can be behind it)."""
    settings, store, _ = tiny_atlas
    first, grid = one_grid
    cell = grid["heads"][5]
    size = grid["thumbnail_size"]
    packed = base64.b64decode(grid["thumbnails"])
    expected = packed[5 * size * size : 6 * size * size]
    loading = LocalWorker(settings, store)  # never started: every model call would answer 503
    with TestClient(create_app(settings, loading, store)) as client:
        body = client.get(f"/api/patterns/{cell['id']}/thumbnail").json()
        assert (body["id"], body["name"], body["inference_id"]) == (cell["id"], cell["name"], first["id"])
        assert body["thumbnail_size"] == size and base64.b64decode(body["thumbnail"]) == expected
        assert body["task"] == "identifiers" and body["first_token_correct"] == first["first_token_correct"]
        missing = client.get("/api/patterns/999999999/thumbnail")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_the_full_pattern_marks_the_holes_row_and_column(atlas_client, one_grid):
    _, grid = one_grid
    body = atlas_client.get(f"/api/patterns/{grid['heads'][0]['id']}").json()
    tokens = body["tokens"]
    assert body["hole_query"] == len(tokens) - 1  # the last prompt token predicts the hole
    # FIM (the tiny StarCoder2 speaks it): the hole sits between the prefix's end and the suffix marker
    assert tokens[body["hole_key"] + 1] == "<fim_suffix>" and "<fim_prefix>" in tokens[: body["hole_key"] + 1]
