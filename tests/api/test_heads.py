"""The head endpoints on the tiny atlas: scores, the overview, one head's profile and its examples, checked
against the stored rows they are computed from."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from attnlens.contracts.head_scores import HEAD_SCORES, SCORE_NAMES
from attnlens.store.models import HeadPattern
from tests.api.test_hostile_input import refused


def test_scores_are_served_from_the_registry(atlas_client):
    served = atlas_client.get("/api/heads/scores").json()
    assert [s["name"] for s in served] == list(SCORE_NAMES)
    assert all(s["threshold"] == h.threshold for s, h in zip(served, HEAD_SCORES, strict=True))


def test_overview_lists_every_head_with_medians(atlas_client, tiny_model):
    body = atlas_client.get("/api/heads").json()
    info = tiny_model.info
    assert (body["n_layers"], body["n_heads"]) == (info.n_layers, info.n_heads)
    assert len(body["heads"]) == info.n_layers * info.n_heads
    assert body["n_inferences"] > 0 and body["n_inferences_unscored"] == 0
    head = body["heads"][0]
    assert set(head["medians"]) == set(SCORE_NAMES)


def test_profile_numbers_are_the_stored_values(atlas_client, tiny_atlas):
    _, store, _ = tiny_atlas
    body = atlas_client.get("/api/heads/L1H2").json()
    with store.session() as session:
        stored = session.execute(
            select(HeadPattern.previous_token_mass, HeadPattern.bracket_mass).where(
                HeadPattern.layer == 1, HeadPattern.head == 2
            )
        ).all()
    scores = {s["name"]: s for s in body["scores"]}
    previous = np.array([r[0] for r in stored])
    assert scores["previous_token_mass"]["n_applicable"] == len(stored) == body["n_patterns"]
    assert scores["previous_token_mass"]["median"] == pytest.approx(float(np.median(previous)))
    brackets = [r[1] for r in stored if r[1] is not None]
    # A relational score counts only the inputs it applies to.
    assert scores["bracket_mass"]["n_applicable"] == len(brackets)
    for label in body["labels"]:
        assert label["median"] >= label["threshold"]
    assert "hypothes" in body["caveat"]


def test_examples_lie_in_their_decile(atlas_client):
    top = atlas_client.get(
        "/api/heads/L0H0/examples", params={"score": "first_token_mass", "decile": 10}
    ).json()
    assert top["examples"] and top["high"] is None
    assert all(e["value"] > top["low"] for e in top["examples"])
    values = [e["value"] for e in top["examples"]]
    assert values == sorted(values, reverse=True)
    low = atlas_client.get(
        "/api/heads/L0H0/examples", params={"score": "first_token_mass", "decile": 1}
    ).json()
    assert low["low"] is None and all(e["value"] <= low["high"] for e in low["examples"])


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/heads/L99H99", 404, "not_found"),
        ("/api/heads/nonsense", 422, "head_out_of_range"),
        ("/api/heads/L0H0/examples?score=nope", 422, "invalid_request"),
        ("/api/heads/L0H0/examples?score=entropy&decile=11", 422, None),
    ],
)
def test_bad_head_requests_get_the_error_shape(atlas_client, path, status, code):
    body = refused(atlas_client.get(path), status)
    if code is not None:
        assert body["code"] == code


def test_head_grid_and_pattern_carry_relational_scores(atlas_client):
    inference = atlas_client.get("/api/inferences", params={"limit": 1}).json()["items"][0]
    detail = atlas_client.get(f"/api/inferences/{inference['id']}").json()
    assert detail["head_scores_computed"] is True
    grid = atlas_client.get(f"/api/inferences/{inference['id']}/heads").json()
    cell = grid["heads"][0]
    assert set(cell["relational_scores"]) == {s.name for s in HEAD_SCORES if s.relational}
    pattern = atlas_client.get(f"/api/patterns/{cell['id']}").json()
    assert set(pattern["stats"]) == set(SCORE_NAMES)
    assert pattern["stats"]["duplicate_token_mass"] == cell["relational_scores"]["duplicate_token_mass"]


def test_anomalies_rank_by_robust_z_within_the_head(atlas_client, tiny_atlas):
    _, store, _ = tiny_atlas
    body = atlas_client.get("/api/anomalies", params={"limit": 5}).json()
    assert body["n_patterns"] > 0 and len(body["items"]) == 5
    zs = [item["robust_z"] for item in body["items"]]
    assert zs == sorted(zs, reverse=True)
    top = body["items"][0]
    with store.session() as session:
        errors = np.array(
            session.scalars(
                select(HeadPattern.reconstruction_error).where(
                    HeadPattern.layer == top["layer"], HeadPattern.head == top["head"]
                )
            ).all()
        )
    assert top["head_median"] == pytest.approx(float(np.median(errors)))
    assert top["percentile"] == pytest.approx(float(np.mean(errors <= top["error"])))


def test_one_inference_anomalies_and_grid_percentiles_agree(atlas_client):
    inference = atlas_client.get("/api/inferences", params={"limit": 1}).json()["items"][0]
    body = atlas_client.get(f"/api/inferences/{inference['id']}/anomalies", params={"limit": 200}).json()
    grid = atlas_client.get(f"/api/inferences/{inference['id']}/heads").json()
    assert len(body["items"]) == len(grid["heads"])
    by_id = {cell["id"]: cell for cell in grid["heads"]}
    for item in body["items"]:
        assert by_id[item["id"]]["error_percentile"] == pytest.approx(item["percentile"])
    share = np.mean([cell["error_percentile"] > body["tail"] for cell in grid["heads"]])
    assert body["unusual_share"] == pytest.approx(share)


def test_related_heads_are_the_nearest_mean_directions(atlas_client, tiny_atlas):
    from attnlens.store.codecs import unpack_embeddings

    _, store, _ = tiny_atlas
    related = atlas_client.get("/api/heads/L1H2/related", params={"k": 5}).json()
    assert len(related) == 5 and "L1H2" not in {r["name"] for r in related}
    similarities = [r["similarity"] for r in related]
    assert similarities == sorted(similarities, reverse=True)

    def centroid(layer: int, head: int) -> np.ndarray:
        with store.session() as session:
            blobs = session.scalars(
                select(HeadPattern.embedding).where(HeadPattern.layer == layer, HeadPattern.head == head)
            ).all()
        vectors = unpack_embeddings(list(blobs)).astype(np.float64)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).mean(axis=0)

    mine, top = centroid(1, 2), centroid(related[0]["layer"], related[0]["head"])
    cosine = float(mine @ top / np.linalg.norm(mine) / np.linalg.norm(top))
    assert related[0]["similarity"] == pytest.approx(cosine, abs=1e-6)


def test_importance_is_the_largest_above_chance_shap(full_atlas):
    client, _ = full_atlas
    rankings = client.get("/api/predictors/heads", params={"top": 50}).json()
    expected: dict[str, float] = {}
    for ranking in rankings:
        if ranking["above_chance"]:
            for head in ranking["heads"]:
                expected[head["name"]] = max(expected.get(head["name"], 0.0), head["mean_abs_shap"])
    assert expected  # the predicted atlas's predictor lies above chance
    heads = client.get("/api/heads").json()["heads"]
    got = {h["name"]: h["importance"] for h in heads if h["importance"] is not None}
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value)
