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
