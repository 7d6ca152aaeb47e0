"""Related heads across models over HTTP: the head x head matrix of two models in one AP-MAE space, one
head's nearest heads of the other models, and clear errors for models that cannot be compared."""

from __future__ import annotations

import math

import pytest

from attnlens.store.head_moments import head_task_moments, model_embedders
from tests.store.second_model import SECOND_GRID, SECOND_MODEL, add_second_model


@pytest.fixture(scope="module")
def two_models(private_atlas_client):
    """The private tiny atlas plus a second model embedded with the same checkpoint (same tasks), and a
    third embedded with another checkpoint. The tiny atlas has 3 patterns per head and task, hence
    `min_patterns=3` in the requests (the default, 5, leaves every task out: a test below)."""
    client = private_atlas_client
    store = client.app.state.store
    served = client.app.state.settings.model.name
    with store.session() as session:
        (embedder,) = model_embedders(session, served)
        dim = head_task_moments(session, served, embedder).means.shape[2]
    add_second_model(store, embedder=embedder, dim=dim, n=12)
    add_second_model(store, "tiny-elsewhere", embedder="another-apmae", dim=dim, n=4)
    return client, served, embedder


def test_matrix_has_every_head_pair_and_the_label_validation(two_models):
    client, served, embedder = two_models
    response = client.get("/api/cross-model", params={"other": SECOND_MODEL, "min_patterns": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["other"], body["embedder"]) == (served, SECOND_MODEL, embedder)
    assert body["tasks"] == ["closing_bracket", "identifiers"]  # the tasks both models have
    assert [r["name"] for r in body["rows"]] == [
        f"L{layer}H{head}" for layer in range(4) for head in range(4)
    ]
    assert [c["name"] for c in body["columns"]] == [
        f"L{layer}H{head}" for layer in range(SECOND_GRID[0]) for head in range(SECOND_GRID[1])
    ]
    matrix = body["distances"]
    assert len(matrix) == 16 and all(len(row) == SECOND_GRID[0] * SECOND_GRID[1] for row in matrix)
    values = [v for row in matrix for v in row]
    assert all(v is not None and math.isfinite(v) and v >= 0 for v in values)
    assert {a["score"] for a in body["agreement"]} == {
        "previous_token_mass",
        "first_token_mass",
        "induction_mass",
    }
    for row in body["agreement"]:
        assert row["mean_all"] == pytest.approx(sum(values) / len(values))
        assert 0 <= row["chance"] <= 1 and 0 <= row["nearest_hits"] <= row["heads_a"]
        if row["auc"] is not None:
            assert 0 <= row["auc"]["estimate"] <= 1


def test_the_other_direction_is_the_transpose(two_models):
    client, served, _ = two_models
    ab = client.get("/api/cross-model", params={"other": SECOND_MODEL, "min_patterns": 3}).json()
    ba = client.get(
        "/api/cross-model", params={"model": SECOND_MODEL, "other": served, "min_patterns": 3}
    ).json()
    assert [r["name"] for r in ba["rows"]] == [c["name"] for c in ab["columns"]]
    for i, row in enumerate(ba["distances"]):
        for j, value in enumerate(row):
            assert value == pytest.approx(ab["distances"][j][i])


def test_related_across_lists_the_nearest_heads_of_comparable_models_only(two_models):
    client, _, embedder = two_models
    matrix = client.get("/api/cross-model", params={"other": SECOND_MODEL, "min_patterns": 3}).json()
    response = client.get("/api/heads/L1H2/related-across", params={"k": 3, "min_patterns": 3})
    assert response.status_code == 200, response.text
    (group,) = response.json()  # tiny-elsewhere is embedded by another checkpoint: not comparable
    assert (group["model"], group["embedder"]) == (SECOND_MODEL, embedder)
    row = matrix["distances"][[r["name"] for r in matrix["rows"]].index("L1H2")]
    nearest = sorted(range(len(row)), key=lambda j: row[j])[:3]
    assert [h["name"] for h in group["heads"]] == [matrix["columns"][j]["name"] for j in nearest]
    assert [h["distance"] for h in group["heads"]] == pytest.approx([row[j] for j in nearest])


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"other": "tiny-elsewhere"}, 400, "invalid_input"),  # another AP-MAE checkpoint
        ({"other": "no-such-model"}, 404, "not_found"),
        ({"other": "tiny-starcoder2"}, 400, "invalid_input"),  # the same model twice
        ({}, 422, "invalid_request"),
    ],
)
def test_models_that_cannot_be_compared_get_a_clear_error(two_models, params, status, code):
    client, _, _ = two_models
    response = client.get("/api/cross-model", params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["code"] == code and body["error"]


def test_too_few_patterns_per_task_is_insufficient_data_not_a_made_up_distance(two_models):
    client, _, _ = two_models
    response = client.get("/api/cross-model", params={"other": SECOND_MODEL})  # default: 5 patterns a task
    assert response.status_code == 422 and response.json()["code"] == "insufficient_data"
    assert "at least 5 patterns" in response.json()["error"]


def test_related_across_says_when_too_few_patterns_leave_nothing_to_compare(two_models):
    client, _, _ = two_models
    (group,) = client.get("/api/heads/L1H2/related-across").json()  # default: 5 patterns a task; 3 here
    assert group["heads"] == [] and group["typical_distance"] is None and group["min_patterns"] == 5
