"""Deleting a finished job's result, on a private copy of the predicted atlas (a map, a clustering with
predictors trained on it, an experiment that ranked heads by a predictor, a report citing it): what is used
by another result is refused with the users named, until they are gone; what goes takes its rows with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from attnlens.store.models import (
    Cluster,
    Clustering,
    FamilyAssignment,
    FamilyRun,
    Job,
    MapPoint,
    PatternFamily,
    PatternMap,
    Predictor,
)
from tests.conftest import copy_atlas


@pytest.fixture(scope="module")
def client(full_atlas, tmp_path_factory) -> Iterator[TestClient]:
    from attnlens.api import create_app
    from attnlens.store import open_store

    shared, _ids = full_atlas
    settings = shared.app.state.settings
    data = tmp_path_factory.mktemp("deletions") / "data"
    copy_atlas(settings.data_dir, data)
    mine = settings.model_copy(update={"data_dir": data})
    store = open_store(mine)
    with TestClient(create_app(mine, shared.app.state.worker, store)) as own:
        yield own


def count(client, table, *where) -> int:
    with client.app.state.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def jobs_of(client, kind: str) -> list[dict]:
    return [j for j in client.get("/api/jobs", params={"limit": 500}).json() if j["kind"] == kind]


def test_results_in_use_are_refused_until_their_users_are_gone(client):
    (experiment,) = [j for j in jobs_of(client, "ablation_experiment") if j["state"] == "succeeded"]
    ranking = experiment["result"]["ranking_predictor_id"]
    with client.app.state.store.session() as session:
        trainer = session.get(Predictor, ranking).job_id
        clustering_id = session.get(Predictor, ranking).clustering_id
        clusterer = session.get(Clustering, clustering_id).job_id if clustering_id else None
    assert trainer is not None and clusterer is not None  # the ranking predictor was trained on clusters

    refused = client.delete(f"/api/jobs/{trainer}/result")
    assert (refused.status_code, refused.json()["code"]) == (409, "in_use")
    assert f"#{experiment['id']}" in refused.json()["error"]  # names the experiment to delete first
    assert count(client, Predictor, Predictor.job_id == trainer) > 0  # nothing went

    used = client.delete(f"/api/jobs/{clusterer}/result")
    assert (used.status_code, used.json()["code"]) == (409, "in_use")
    assert f"#{ranking}" in used.json()["error"]  # names the predictor trained on it

    (report,) = [j for j in jobs_of(client, "findings_report") if j["state"] == "succeeded"]
    gone = client.delete(f"/api/jobs/{experiment['id']}/result")
    assert gone.status_code == 200, gone.text
    body = gone.json()
    assert body["job_deleted"] and body["kind"] == "ablation_experiment"
    assert body["reports_keeping_a_copy"] == [report["id"]]  # the report cites it and keeps its copy
    assert client.get(f"/api/jobs/{experiment['id']}").status_code == 404
    assert client.get(f"/api/jobs/{report['id']}").json()["result"]["dose"]["points"]  # untouched

    predictors = count(client, Predictor, Predictor.job_id == trainer)
    now = client.delete(f"/api/jobs/{trainer}/result").json()
    assert len(now["predictors"]) == predictors > 0
    assert count(client, Predictor, Predictor.job_id == trainer) == 0
    clusters = count(client, Cluster, Cluster.clustering_id == clustering_id)
    done = client.delete(f"/api/jobs/{clusterer}/result").json()
    assert done["clusterings"] == [clustering_id] and clusters > 0
    assert count(client, Cluster, Cluster.clustering_id == clustering_id) == 0  # its clusters went too


def test_a_maps_points_go_with_it(client):
    (job,) = [j for j in jobs_of(client, "atlas_map") if j["state"] == "succeeded"]
    with client.app.state.store.session() as session:
        (map_id,) = session.scalars(select(PatternMap.id).where(PatternMap.job_id == job["id"])).all()
    assert count(client, MapPoint, MapPoint.pattern_map_id == map_id) > 0
    done = client.delete(f"/api/jobs/{job['id']}/result").json()
    assert done["maps"] == [map_id] and not done["job_deleted"]
    assert count(client, MapPoint, MapPoint.pattern_map_id == map_id) == 0
    assert client.get("/api/maps/latest").status_code == 404  # the map is gone: the map page says "not yet"


def test_pattern_families_go_with_their_job(client):
    (job,) = [j for j in jobs_of(client, "pattern_families") if j["state"] == "succeeded"]
    with client.app.state.store.session() as session:
        (run_id,) = session.scalars(select(FamilyRun.id).where(FamilyRun.job_id == job["id"])).all()
    assert count(client, FamilyAssignment, FamilyAssignment.family_run_id == run_id) > 0
    done = client.delete(f"/api/jobs/{job['id']}/result").json()
    assert done["family_runs"] == [run_id] and not done["job_deleted"]
    assert count(client, FamilyAssignment, FamilyAssignment.family_run_id == run_id) == 0
    assert count(client, PatternFamily, PatternFamily.family_run_id == run_id) == 0
    assert client.get("/api/families").json()["families"] == []


def test_what_cannot_be_deleted_says_why(client):
    from attnlens.store.jobs import enqueue_job

    store = client.app.state.store
    queued = enqueue_job(store, "atlas_map", {})
    answer = client.delete(f"/api/jobs/{queued}/result")
    assert (answer.status_code, answer.json()["code"]) == (
        400,
        "invalid_input",
    ) and "cancel it" in answer.json()["error"]
    with store.session() as session:
        build = session.scalar(select(Job.id).where(Job.kind == "atlas_build").limit(1))
    if build is not None:
        refused = client.delete(f"/api/jobs/{build}/result")
        assert refused.status_code == 400 and "atlas itself" in refused.json()["error"]
    missing = client.delete("/api/jobs/999999/result")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
