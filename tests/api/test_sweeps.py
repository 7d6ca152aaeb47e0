"""Ablation sweeps: queued through the API, run by the worker's job runner on the tiny model, and every
row checked against the model itself and against the interactive ablation endpoint."""

from __future__ import annotations

import pytest
import torch

from attnlens.atlas.sweep import run_head_sweep
from attnlens.contracts.jobs import HEAD_SWEEP
from attnlens.heads import HeadRef
from attnlens.service.jobs import JobRunner
from attnlens.store.codecs import unpack_token_ids
from attnlens.store.inferences import get_inference, prompt_ids_of


def _run_queued(client) -> None:
    state = client.app.state
    assert JobRunner(state.settings, state.store, state.worker, {HEAD_SWEEP: run_head_sweep}).run_once()


@pytest.fixture(scope="module")
def inference_id(private_atlas_client) -> int:
    rows = private_atlas_client.get("/api/inferences?limit=5&task=identifiers").json()["items"]
    return rows[0]["id"]


def test_a_sweep_is_queued_once_and_read_back_row_by_row(private_atlas_client, inference_id):
    client = private_atlas_client
    before = client.get(f"/api/inferences/{inference_id}/sweeps/latest")
    # No sweep yet is a state of the inference, not an error (a 404 would be a console error on every page).
    assert before.status_code == 200 and before.json()["job"] is None and before.json()["rows"] == []

    queued = client.post(f"/api/inferences/{inference_id}/sweeps")
    assert queued.status_code == 202 and queued.json()["state"] == "queued"
    again = client.post(f"/api/inferences/{inference_id}/sweeps")
    assert again.status_code == 202 and again.json()["id"] == queued.json()["id"]  # not a second job
    waiting = client.get(f"/api/inferences/{inference_id}/sweeps/latest").json()
    assert waiting["job"]["state"] == "queued" and waiting["rows"] == []

    _run_queued(client)
    sweep = client.get(f"/api/inferences/{inference_id}/sweeps/latest").json()
    assert sweep["job"]["state"] == "succeeded", sweep["job"]["error"]
    assert sweep["job"]["progress_done"] == sweep["job"]["progress_total"] == 16 + 4 + 1
    rows = {row["target"]: row for row in sweep["rows"]}
    assert list(rows)[:16] == [HeadRef(layer, h).name for layer in range(4) for h in range(4)]
    assert list(rows)[16:] == ["L0", "L1", "L2", "L3"]

    # Every row against the model itself: the pass with that head (or layer) ablated.
    state = client.app.state
    with state.store.session() as session:
        inference = get_inference(session, inference_id)
        prompt = prompt_ids_of(inference)
        expected = unpack_token_ids(inference.scenario.target_ids)[0]
    model = state.worker.model
    base = torch.softmax(model.next_token_logits(prompt).double(), dim=-1)
    assert sweep["baseline_p_expected"] == pytest.approx(float(base[expected]), abs=1e-9)
    flipped = 0
    for name, row in rows.items():
        heads = [HeadRef.parse(name)] if "H" in name else [HeadRef(int(name[1:]), h) for h in range(4)]
        probs = torch.softmax(model.next_token_logits(prompt, ablate=heads).double(), dim=-1)
        assert row["p_expected"] == pytest.approx(float(probs[expected]), abs=1e-9), name
        assert row["delta_p_expected"] == pytest.approx(float(probs[expected] - base[expected]), abs=1e-9)
        assert row["flipped"] == (int(probs.argmax()) != int(base.argmax())), name
        assert row["top_token_id"] == int(probs.argmax()) and row["kl"] >= 0
        flipped += row["flipped"]
    assert sweep["flipped"] == flipped

    # And one row against the interactive ablation (a different code path: greedy generation).
    outcome = client.post(f"/api/inferences/{inference_id}/ablations", json={"heads": ["L1H2"]}).json()
    assert rows["L1H2"]["p_expected"] == pytest.approx(outcome["p_expected_ablated"], abs=1e-5)
    assert rows["L1H2"]["kl"] == pytest.approx(outcome["kl_at_hole"], abs=1e-5)


def test_a_sweep_cancelled_before_it_runs_ends_cancelled_without_rows(private_atlas_client):
    client = private_atlas_client
    other = client.get("/api/inferences?limit=5&task=identifiers").json()["items"][1]["id"]
    job = client.post(f"/api/inferences/{other}/sweeps").json()
    client.post(f"/api/jobs/{job['id']}/cancel")
    latest = client.get(f"/api/inferences/{other}/sweeps/latest").json()
    assert latest["job"]["state"] == "cancelled" and latest["rows"] == []


def test_sweeps_of_unknown_inferences_are_refused(private_atlas_client):
    client = private_atlas_client
    for path in ("/api/inferences/999999/sweeps", "/api/inferences/999999/sweeps/latest"):
        response = client.post(path) if path.endswith("sweeps") else client.get(path)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    bad = client.post("/api/inferences/abc/sweeps")
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_request")
