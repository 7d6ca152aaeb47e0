"""Jobs through the API: list, read with progress and ETA, cancel."""

from __future__ import annotations

from attnlens.store.jobs import claim_job, enqueue_job, report_progress


def test_jobs_list_read_and_cancel(atlas_client, tiny_atlas):
    _, store, _ = tiny_atlas
    queued = enqueue_job(store, "test-sleep", {"n": 1}, total=10)
    running = enqueue_job(store, "test-run", {}, total=10)
    claimed = claim_job(store, "tester", kinds=["test-run"])
    assert claimed is not None and claimed.id == running
    report_progress(store, running, "tester", done=4, total=10, message="four of ten")

    listed = atlas_client.get("/api/jobs").json()
    assert {queued, running} <= {j["id"] for j in listed}
    body = atlas_client.get(f"/api/jobs/{running}").json()
    assert body["state"] == "running" and body["progress_done"] == 4 and body["message"] == "four of ten"
    assert body["eta_seconds"] is not None and body["eta_seconds"] >= 0
    only_queued = atlas_client.get("/api/jobs", params={"state": "queued"}).json()
    assert all(j["state"] == "queued" for j in only_queued)

    cancelled = atlas_client.post(f"/api/jobs/{queued}/cancel").json()
    assert cancelled["state"] == "cancelled"
    asked = atlas_client.post(f"/api/jobs/{running}/cancel").json()
    assert asked["state"] == "running" and asked["cancel_requested"] is True

    assert atlas_client.get("/api/jobs/987654").status_code == 404
    assert atlas_client.get("/api/jobs", params={"state": "sleeping"}).status_code == 422


def test_an_eta_rests_on_the_recent_jobs_of_its_kind(private_atlas_client):
    """A map's progress is uneven (its UMAP fit moves no counter): after 60 s at 1 of 100 units, its own
    pace says 99 minutes; the last map of the kind took 120 s for 100 units, so about 60 s are left. Before
    any job of a kind finished, the job's own pace is all there is, and the answer says which it used."""
    from datetime import timedelta

    from attnlens.store.base import utc_now
    from attnlens.store.models import Job

    client = private_atlas_client
    store = client.app.state.store
    now = utc_now()
    finished = enqueue_job(store, "eta-kind", {}, total=100)
    running = enqueue_job(store, "eta-kind", {}, total=100)
    lonely = enqueue_job(store, "eta-new-kind", {}, total=100)
    with store.session() as session:
        past = session.get(Job, finished)
        past.state, past.progress_done = "succeeded", 100
        past.started_at, past.finished_at = now - timedelta(seconds=500), now - timedelta(seconds=380)
        for job_id in (running, lonely):
            job = session.get(Job, job_id)
            job.state, job.progress_done, job.started_at = "running", 1, now - timedelta(seconds=60)

    body = client.get(f"/api/jobs/{running}").json()
    listed = {j["id"]: j for j in client.get("/api/jobs").json()}
    alone = client.get(f"/api/jobs/{lonely}").json()
    # Each answer was made between `now` and `late`: 60 to 60 + late s after the jobs started. The last job's
    # pace leaves 120 s minus that; the lonely job's own pace (1 unit in that time) leaves 99 times it.
    late = (utc_now() - now).total_seconds()
    assert (
        60 - late - 1 <= body["eta_seconds"] <= 61
        and body["eta_basis"] == "the pace of the last job of this kind"
    )
    assert 60 - late - 1 <= listed[running]["eta_seconds"] <= 61
    assert 99 * 60 - 1 <= alone["eta_seconds"] <= 99 * (60 + late) + 1
    assert alone["eta_basis"] == "this job's pace so far"


def test_another_models_pace_never_sets_a_jobs_eta(private_atlas_client):
    """A build of Gemma 3 270M ran at its own pace; a SmolLM2 build's ETA must not rest on it (the make run
    smoke check showed 22 minutes left of a build that had 2 to go). Paces are kept per kind and model."""
    from datetime import timedelta

    from attnlens.store.base import utc_now
    from attnlens.store.models import Job

    client = private_atlas_client
    store = client.app.state.store
    now = utc_now()
    other = enqueue_job(store, "eta-model-kind", {"model": "gemma3-270m"}, total=100)
    running = enqueue_job(store, "eta-model-kind", {}, total=100)
    with store.session() as session:
        past = session.get(Job, other)
        past.state, past.progress_done = "succeeded", 100
        past.started_at, past.finished_at = now - timedelta(seconds=5000), now - timedelta(seconds=1000)
        job = session.get(Job, running)
        job.state, job.progress_done, job.started_at = "running", 50, now - timedelta(seconds=60)
    body = client.get(f"/api/jobs/{running}").json()
    late = (utc_now() - now).total_seconds()
    assert body["eta_basis"] == "this job's pace so far"  # not the 4,000 s the other model's job took
    assert 60 - 1 <= body["eta_seconds"] <= 60 + late + 1
    same = enqueue_job(store, "eta-model-kind", {"model": "gemma3-270m"}, total=100)
    with store.session() as session:
        job = session.get(Job, same)
        job.state, job.progress_done, job.started_at = "running", 50, now - timedelta(seconds=60)
    assert client.get(f"/api/jobs/{same}").json()["eta_basis"] == "the pace of the last job of this kind"
    # The same model built on Ray (its actors' start-up in every job) keeps its own pace.
    on_ray = enqueue_job(store, "eta-model-kind", {"model": "gemma3-270m", "engine": "ray"}, total=100)
    with store.session() as session:
        job = session.get(Job, on_ray)
        job.state, job.progress_done, job.started_at = "running", 50, now - timedelta(seconds=60)
    assert client.get(f"/api/jobs/{on_ray}").json()["eta_basis"] == "this job's pace so far"
