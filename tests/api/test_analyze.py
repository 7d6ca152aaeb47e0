"""Analyze pasted Java through the API (tiny StarCoder2 + tiny AP-MAE), and every bad input it must refuse."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def atlas_client(private_atlas_client):
    return private_atlas_client


JAVA = """public class Pair {
    private final int left;
    private final int right;

    public Pair(int left, int right) {
        this.left = left;
        this.right = right;
    }

    public int max() {
        return left >= right ? left : right;
    }
}
"""


def test_selection_is_completed_stored_and_browsable(atlas_client):
    start = JAVA.index("right ? left")
    body = atlas_client.post(
        "/api/analyze", json={"code": JAVA, "hole": {"start": start, "end": start + 5}}
    ).json()
    assert body["target_text"].strip() == "right" and body["task"] is None
    assert isinstance(body["first_token_correct"], bool) and 0 <= body["expected_token_prob"] <= 1
    assert body["prediction"] is None and "predictors train" in body["prediction_unavailable"]
    grid = body["grid"]
    assert (grid["n_layers"], grid["n_heads"]) == (4, 4) and len(grid["heads"]) == 16
    # How unlike the atlas this input is: the share of heads in the tail of their own atlas errors.
    percentiles = [cell["error_percentile"] for cell in grid["heads"]]
    assert all(p is not None and 0 <= p <= 1 for p in percentiles), percentiles
    in_tail = sum(p > body["unusual_tail"] for p in percentiles) / len(percentiles)
    assert body["unusual_share"] == pytest.approx(in_tail)
    unstored = atlas_client.post(
        "/api/analyze", json={"code": JAVA, "hole": {"start": start, "end": start + 5}, "store": False}
    ).json()
    assert [c["reconstruction_error"] for c in unstored["grid"]["heads"]] == pytest.approx(
        [c["reconstruction_error"] for c in grid["heads"]], rel=1e-3
    )
    assert unstored["unusual_share"] == pytest.approx(body["unusual_share"])
    detail = atlas_client.get(f"/api/inferences/{body['inference_id']}").json()
    assert detail["task"] == "selection" and detail["file_path"].startswith("pasted/")
    assert detail["mode"] == "fim" and detail["prompt_tokens"][0] == "<fim_prefix>"
    assert len(detail["prompt_tokens"]) < 256  # short code: a shorter window, padded for AP-MAE
    again = atlas_client.post(
        "/api/analyze", json={"code": JAVA, "hole": {"start": start, "end": start + 5}}
    ).json()
    assert again["inference_id"] == body["inference_id"]
    hits = atlas_client.get(f"/api/patterns/{grid['heads'][3]['id']}/neighbors", params={"k": 3}).json()[
        "hits"
    ]
    assert len(hits) == 3


def test_cursor_and_automatic_holes(atlas_client):
    cursor = JAVA.index("public int max")
    body = atlas_client.post(
        "/api/analyze", json={"code": JAVA, "hole": {"cursor": cursor, "task": "closing_bracket"}}
    ).json()
    # The first closing bracket after the cursor is the `)` of `max()`; aligned to the tokenizer's tokens,
    # the hole grows to the token holding it (`()` is one token here).
    assert body["task"] == "closing_bracket" and body["target_text"].strip() in (")", "()")
    detail = atlas_client.get(f"/api/inferences/{body['inference_id']}").json()
    assert detail["hole_start"] >= len(JAVA[:cursor].encode()) and detail["node_type"] == ")"
    auto = atlas_client.post(
        "/api/analyze", json={"code": JAVA, "tasks": ["identifiers", "closing_bracket"]}
    ).json()
    assert auto["task"] == "identifiers" and [o["task"] for o in auto["others"]] == ["closing_bracket"]


def test_bad_code_gets_clear_4xx_errors(atlas_client):
    def post(payload):
        response = atlas_client.post("/api/analyze", json=payload)
        assert 400 <= response.status_code < 500, (payload, response.text)
        body = response.json()
        assert body["ok"] is False and body["status"] == response.status_code and body["error"]
        return response.status_code, body["code"]

    assert post({"code": "   \n"}) == (400, "empty_input")
    assert post({"code": "class A {}" + " " * 70_000}) == (413, "input_too_large")
    assert post({"code": "class A { int x\x00; }"}) == (400, "binary_input")
    assert post({"code": "Il était une fois, dans un pays lointain... ??? !!! ### ((( ]]] }}}"}) == (
        422,
        "not_java",
    )
    assert post({"code": JAVA, "hole": {"start": 5, "end": 5}}) == (422, "invalid_hole")
    assert post({"code": JAVA, "hole": {"start": 0, "end": 10_000}}) == (422, "invalid_hole")
    assert post({"code": JAVA, "hole": {"cursor": len(JAVA), "task": "identifiers"}}) == (422, "invalid_hole")
    assert post({"code": JAVA, "hole": {"cursor": 0, "task": "fly"}}) == (422, "invalid_hole")
    assert post({"code": JAVA, "tasks": ["boolean_literals"]}) == (422, "invalid_hole")
    assert post({"code": 12}) == (422, "invalid_request")
    assert post({"kode": JAVA}) == (422, "invalid_request")
    raw = atlas_client.post(
        "/api/analyze", content=b"\xff\xfe\x00binary", headers={"content-type": "application/json"}
    )
    assert (
        raw.status_code == 400 and raw.json()["code"] == "invalid_request" and "JSON" in raw.json()["error"]
    )
