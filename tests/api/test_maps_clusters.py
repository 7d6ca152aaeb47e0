"""GET /api/maps/latest and GET /api/heads/{name}/clusters over a copy of the tiny atlas, before and after
the `atlas_cluster` and `atlas_map` jobs ran on it (slow: the jobs run UMAP, once per module)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from attnlens.api import create_app
from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.config import Settings
from attnlens.contracts.jobs import ATLAS_CLUSTER, ATLAS_MAP
from attnlens.service.jobs import run_job_here
from attnlens.service.local import LocalWorker
from attnlens.store import open_store
from attnlens.store.jobs import enqueue_job
from attnlens.store.models import ClusterAssignment, HeadPattern, Inference, Scenario
from tests.conftest import TINY_TASKS

N_PATTERNS = 12 * 16  # the tiny atlas: 12 inferences x 16 heads
# The tiny atlas has 12 patterns per head: UMAP and HDBSCAN need small neighbourhoods to say anything.
TINY_ANALYSIS = {
    "umap_neighbors": 5,
    "hdbscan_min_samples": 2,
    "hdbscan_min_cluster_size": 3,
    "map_neighbors": 5,
}


def copy_tiny_atlas(tiny_atlas, data_dir: Path) -> Settings:
    """Settings on a private copy of the shared tiny atlas's database (the shared one stays read-only)."""
    source_settings, _store, _report = tiny_atlas
    data_dir.mkdir(parents=True)
    settings = Settings.model_validate(
        {**source_settings.model_dump(), "data_dir": data_dir, "analysis": TINY_ANALYSIS}
    )
    source = sqlite3.connect(source_settings.data_dir / "attnlens.db")
    target = sqlite3.connect(data_dir / "attnlens.db")
    with target:
        source.backup(target)
    source.close()
    target.close()
    shutil.copytree(source_settings.index_dir, settings.index_dir)
    return settings


def client_for(settings: Settings):
    store = open_store(settings)
    return TestClient(create_app(settings, LocalWorker(settings), store)), store


@pytest.fixture(scope="module")
def empty_client(tiny_atlas, tmp_path_factory: pytest.TempPathFactory):
    settings = copy_tiny_atlas(tiny_atlas, tmp_path_factory.mktemp("no-analysis") / "data")
    client, _store = client_for(settings)
    with client:
        yield client


@pytest.fixture(scope="module")
def analysed(tiny_atlas, tmp_path_factory: pytest.TempPathFactory):
    settings = copy_tiny_atlas(tiny_atlas, tmp_path_factory.mktemp("analysed") / "data")
    client, store = client_for(settings)
    results = {}
    for kind in (ATLAS_CLUSTER, ATLAS_MAP):
        job = run_job_here(settings, store, enqueue_job(store, kind, {}), None, JOB_HANDLERS[kind])
        assert job.state == "succeeded", job.error
        results[kind] = job.result
    with client:
        yield client, store, results


def test_no_clustering_or_map_yet_is_404_with_the_command(empty_client):
    response = empty_client.get("/api/heads/L0H0/clusters")
    assert response.status_code == 404
    assert "attnlens atlas cluster" in response.json()["error"]
    response = empty_client.get("/api/maps/latest")
    assert response.status_code == 404
    assert "attnlens atlas map" in response.json()["error"]


@pytest.mark.slow
def test_bad_head_names_are_422(analysed):
    client, _store, _results = analysed
    for name in ("L0X1", "head3", "L4H0", "L0H4"):  # malformed, malformed, layer and head out of range
        response = client.get(f"/api/heads/{name}/clusters")
        assert response.status_code == 422, name
        assert response.json()["code"] == "head_out_of_range"


@pytest.mark.slow
def test_head_clusters_describe_every_pattern_of_the_head(analysed):
    client, store, results = analysed
    assert results[ATLAS_CLUSTER]["heads"] == 16
    response = client.get("/api/heads/L1H2/clusters")
    assert response.status_code == 200
    clusters = response.json()
    assert sum(c["size"] for c in clusters) == 12
    assert [c["label"] for c in clusters] == sorted(c["label"] for c in clusters if c["label"] >= 0) + (
        [-1] if any(c["label"] == -1 for c in clusters) else []
    )
    with store.session() as session:
        for cluster in clusters:
            assert sum(cluster["tasks"].values()) == cluster["size"]
            assert set(cluster["tasks"]) <= set(TINY_TASKS)
            assert sum(cluster["node_types"].values()) == cluster["size"]
            if cluster["label"] >= 0:
                medoid = session.get(HeadPattern, cluster["medoid_pattern_id"])
                assert (medoid.layer, medoid.head) == (1, 2)
            else:
                assert cluster["medoid_pattern_id"] is None
    assert client.get("/api/heads/L1H2/clusters", params={"model": "other"}).status_code == 404


def test_cluster_panel_facts_are_the_members_own(analysed):
    """Labels, examples and correctness of each cluster, recomputed from the stored rows."""
    client, store, _ = analysed
    clusters = client.get("/api/heads/L1H2/clusters").json()
    with store.session() as session:
        rows = session.execute(
            select(
                ClusterAssignment.label, Inference.first_token_correct, HeadPattern.id, HeadPattern.entropy
            )
            .join(HeadPattern, HeadPattern.id == ClusterAssignment.head_pattern_id)
            .join(Inference, Inference.id == HeadPattern.inference_id)
            .where(HeadPattern.layer == 1, HeadPattern.head == 2)
        ).all()
    everyone = [r[1] for r in rows if r[1] is not None]
    for cluster in clusters:
        mine = [r for r in rows if r[0] == cluster["label"]]
        known = [r[1] for r in mine if r[1] is not None]
        assert (cluster["known"], cluster["correct"]) == (len(known), sum(known))
        assert cluster["head_correct_rate"] == pytest.approx(sum(everyone) / len(everyone))
        if known:
            assert cluster["correct_low"] <= cluster["correct_rate"] <= cluster["correct_high"]
        examples = [e["id"] for e in cluster["examples"]]
        assert len(examples) == min(3, cluster["size"]) and set(examples) <= {r[2] for r in mine}
        if cluster["medoid_pattern_id"] is not None:
            assert examples[0] == cluster["medoid_pattern_id"]
        broad = float(np.median([r[3] for r in mine]))
        labelled = {label["score"]: label for label in cluster["labels"]}
        assert ("entropy" in labelled) == (broad >= 0.7)
        if "entropy" in labelled:
            assert labelled["entropy"]["median"] == pytest.approx(broad)


@pytest.mark.slow
def test_map_lists_every_point_with_its_attributes(analysed):
    client, store, results = analysed
    body = client.get("/api/maps/latest").json()
    assert body["map_id"] == results[ATLAS_MAP]["map_id"]
    assert body["total"] == body["shown"] == N_PATTERNS
    points = body["points"]
    assert {len(v) for v in points.values()} == {N_PATTERNS}
    with store.session() as session:
        truth = {
            pid: (layer, head, task, correct, label)
            for pid, layer, head, task, correct, label in session.execute(
                select(HeadPattern.id, HeadPattern.layer, HeadPattern.head, Scenario.task,
                       Inference.first_token_correct, ClusterAssignment.label)
                .join(Inference, Inference.id == HeadPattern.inference_id)
                .join(Scenario, Scenario.id == Inference.scenario_id)
                .join(ClusterAssignment, ClusterAssignment.head_pattern_id == HeadPattern.id)
            )
        }  # fmt: skip
    assert sorted(points["id"]) == sorted(truth)
    for i, pid in enumerate(points["id"]):
        got = (
            points["layer"][i],
            points["head"][i],
            points["task"][i],
            points["correct"][i],
            points["cluster"][i],
        )
        assert got == truth[pid]


@pytest.mark.slow
def test_map_downsamples_deterministically(analysed):
    client, _store, _results = analysed
    full = set(client.get("/api/maps/latest").json()["points"]["id"])
    first = client.get("/api/maps/latest", params={"max_points": 50}).json()
    again = client.get("/api/maps/latest", params={"max_points": 50}).json()
    assert first["total"] == N_PATTERNS
    assert 40 <= first["shown"] <= 50 and first["shown"] == len(first["points"]["x"])
    assert first["points"]["id"] == again["points"]["id"]
    assert set(first["points"]["id"]) <= full
    heads = {
        (layer, head) for layer, head in zip(first["points"]["layer"], first["points"]["head"], strict=True)
    }
    assert len(heads) >= 12  # the sample spreads over the heads, not a few of them
    assert client.get("/api/maps/latest", params={"max_points": 0}).status_code == 422


@pytest.mark.slow
def test_grid_and_neighbours_carry_each_patterns_stored_cluster(analysed, empty_client):
    """HeadCell.cluster and NeighborHit.cluster are the labels the newest clustering stored (the grid's
    hover read a field that was never sent); null before any clustering."""
    client, store, _results = analysed
    with store.session() as session:
        labels = dict(
            session.execute(select(ClusterAssignment.head_pattern_id, ClusterAssignment.label)).all()
        )
        inference_id = session.scalar(select(Inference.id).order_by(Inference.id).limit(1))
    cells = client.get(f"/api/inferences/{inference_id}/heads").json()["heads"]
    assert len(cells) == 16
    assert [c["cluster"] for c in cells] == [labels[c["id"]] for c in cells]
    hits = client.get(f"/api/patterns/{cells[5]['id']}/neighbors", params={"k": 8}).json()["hits"]
    assert hits and [h["cluster"] for h in hits] == [labels[h["id"]] for h in hits]
    bare = empty_client.get(f"/api/inferences/{inference_id}/heads").json()["heads"]
    assert {c["cluster"] for c in bare} == {None}
