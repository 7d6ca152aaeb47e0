"""POST /api/analyze/holes: the hole(s) POST /api/analyze would complete, found without running a model.

The preview and the run must agree: for cursors, tasks, selections and automatic holes on the Java
fixtures, the preview's span (code points) and expected text are the run's, read back from its answer
(`target_text`, `task`) and its stored inference (`hole_start`/`hole_end` bytes, `node_type`). Every request
no hole can be made for gets the run's own error, in the one error shape. The preview answers while the
model is still loading (tree-sitter only; not yet widened to tokens then)."""

from __future__ import annotations

import bisect
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from attnlens.api import create_app
from attnlens.api.schemas import MAX_CODE_CHARS
from attnlens.contracts.tasks import AUTO_TASKS, CURSOR_TASKS
from attnlens.service.local import LocalWorker
from tests.conftest import JAVA_FIXTURES

FIXTURES = sorted(JAVA_FIXTURES.rglob("*.java"))
ERROR_KEYS = {"ok", "status", "code", "error", "errors"}

PAIR = """public class Pair {
    private final int left;
    private final int right;

    public int max() {
        return left >= right ? left : right;
    }
}
"""


@pytest.fixture(scope="module")
def client(private_atlas_client):
    return private_atlas_client


def fixture_code(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def code_point_span(code: str, start_byte: int, end_byte: int) -> tuple[int, int]:
    """Bytes [start, end) as code points: the characters that hold them (a cut inside one takes it in)."""
    starts = [0]
    for char in code:
        starts.append(starts[-1] + len(char.encode("utf-8")))
    return bisect.bisect_right(starts, start_byte) - 1, bisect.bisect_left(starts, end_byte)


def preview_then_run(client: TestClient, code: str, request: dict) -> list[dict] | dict:
    """Preview a request, run it, and check that the two agree. Returns the previewed holes, or the error
    both answered."""
    body = {"code": code, **request}
    preview = client.post("/api/analyze/holes", json=body)
    run = client.post("/api/analyze", json=body)
    if preview.status_code != 200:
        assert 400 <= preview.status_code < 500, preview.text
        assert set(preview.json()) == ERROR_KEYS and preview.json()["status"] == preview.status_code
        assert (run.status_code, run.json()) == (preview.status_code, preview.json()), request
        return preview.json()
    assert run.status_code == 200, (request, run.text)
    answer = preview.json()
    assert answer["aligned"] is True and answer["note"] is None and answer["error"] is None
    holes, results = answer["holes"], [run.json(), *run.json()["others"]]
    assert [h["task"] for h in holes] == [r["task"] for r in results], request
    source = code.encode("utf-8")
    for hole, result in zip(holes, results, strict=True):
        assert hole["expected_text"] == result["target_text"], (request, hole)
        stored = client.get(f"/api/inferences/{result['inference_id']}").json()
        assert (hole["start"], hole["end"]) == code_point_span(code, stored["hole_start"], stored["hole_end"])
        assert hole["expected_text"] == source[stored["hole_start"] : stored["hole_end"]].decode(
            "utf-8", errors="replace"
        )
        # The hole is the target (or the selection) widened to whole tokens, never moved off it.
        assert hole["start"] <= hole["target_start"] < hole["target_end"] <= hole["end"]
        assert hole["node_type"] == stored["node_type"]
        assert stored["task"] == (hole["task"] or "selection")
    return holes


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_preview_and_run_agree_on_the_fixtures(client, path):
    """Cursors at three places with a different cursor task at each, a selection and an automatic hole, on
    every fixture; a request no hole can be made for must get the same error from both."""
    code = fixture_code(path)
    n = len(code)
    shift = FIXTURES.index(path)
    made = 0
    for k, cursor in enumerate((0, n // 3, (2 * n) // 3)):
        task = CURSOR_TASKS[(3 * shift + k) % len(CURSOR_TASKS)]
        made += isinstance(preview_then_run(client, code, {"hole": {"cursor": cursor, "task": task}}), list)
        made += isinstance(
            preview_then_run(client, code, {"hole": {"cursor": cursor, "task": "identifiers"}}), list
        )
    # A selection of a few characters in the middle (across a token boundary, so it widens).
    middle = code.index("\n", n // 2) + 5
    made += isinstance(preview_then_run(client, code, {"hole": {"start": middle, "end": middle + 3}}), list)
    auto = [AUTO_TASKS[shift % len(AUTO_TASKS)], "closing_bracket"]
    made += isinstance(preview_then_run(client, code, {"tasks": auto}), list)
    if path.name != "Broken.java":
        assert made >= 6  # most requests make a hole: the agreement above was checked on real holes


def test_preview_names_the_next_target_after_the_cursor_and_follows_it(client):
    first = preview_then_run(client, PAIR, {"hole": {"cursor": PAIR.index("left >="), "task": "identifiers"}})
    assert isinstance(first, list) and len(first) == 1
    (hole,) = first
    assert PAIR[hole["target_start"] : hole["target_end"]] == "left"
    assert hole["expected_text"].strip() == "left"
    moved = client.post(
        "/api/analyze/holes",
        json={"code": PAIR, "hole": {"cursor": PAIR.index("right ?"), "task": "identifiers"}},
    ).json()["holes"]
    assert PAIR[moved[0]["target_start"] : moved[0]["target_end"]] == "right"
    # `store` is accepted (the body is the run's) and ignored: a preview writes nothing.
    before = client.get("/api/inferences", params={"limit": 1}).json()["total"]
    client.post("/api/analyze/holes", json={"code": PAIR + "// new\n", "store": True})
    assert client.get("/api/inferences", params={"limit": 1}).json()["total"] == before


def test_every_refusal_is_the_runs_error_in_the_one_shape(client):
    def refused(body: dict) -> tuple[int, str]:
        response = client.post("/api/analyze/holes", json=body)
        assert 400 <= response.status_code < 500, (body, response.text)
        error = response.json()
        assert set(error) == ERROR_KEYS and error["ok"] is False and error["status"] == response.status_code
        assert error["error"]
        inline = client.post("/api/analyze/holes", params={"inline_errors": "true"}, json=body)
        if error["code"] != "invalid_request":  # a body that breaks the schema is refused before any check
            assert inline.status_code == 200 and inline.json()["holes"] == []
            assert inline.json()["error"] == error
        return response.status_code, error["code"]

    assert refused({"code": "   \n"}) == (400, "empty_input")
    assert refused({"code": "class A { int x\x00; }"}) == (400, "binary_input")
    assert refused({"code": "Il était une fois, dans un pays lointain... ??? !!! ### ((( ]]] }}}"}) == (
        422,
        "not_java",
    )
    assert refused({"code": "class A {}" + " " * 70_000}) == (413, "input_too_large")
    too_long = refused({"code": "x" * (MAX_CODE_CHARS + 1)})
    assert too_long in ((413, "input_too_large"), (422, "invalid_request"))
    assert refused({"code": PAIR, "hole": {"cursor": len(PAIR) + 1, "task": "identifiers"}}) == (
        422,
        "invalid_hole",
    )
    assert refused({"code": PAIR, "hole": {"cursor": 0, "task": "fly"}}) == (422, "invalid_hole")
    assert refused({"code": PAIR, "tasks": ["fly"]}) == (422, "invalid_hole")
    assert refused({"code": PAIR, "tasks": ["boolean_literals"]}) == (422, "invalid_hole")
    assert refused({"code": PAIR, "hole": {"start": 5, "end": 5}}) == (422, "invalid_hole")
    assert refused({"code": PAIR, "hole": {"start": 0, "end": 10_000}}) == (422, "invalid_hole")
    assert refused({"code": PAIR, "hole": {"cursor": -1, "task": "eol"}}) == (422, "invalid_request")
    assert refused({"code": 12}) == (422, "invalid_request")
    # Past the last `;` there is no eol target: the message says so, the way the run says it.
    no_hole = client.post(
        "/api/analyze/holes", json={"code": PAIR, "hole": {"cursor": PAIR.index("public int"), "task": "eol"}}
    )
    assert no_hole.status_code == 200  # `return ...;` is still ahead
    last = PAIR.rindex(";") + 1
    body = {"code": PAIR, "hole": {"cursor": last, "task": "eol"}}
    error = client.post("/api/analyze/holes", json=body).json()
    assert error["code"] == "invalid_hole" and "no eol target at or after the cursor" in error["error"]
    assert client.post("/api/analyze", json=body).json() == error


def test_the_preview_answers_while_the_model_is_still_loading(settings, client):
    """A worker that has not loaded its model (never started, as the health tests build one): the analysis
    answers 503, the preview still names the hole (tree-sitter's span, not yet widened to tokens), and it
    is the same hole the loaded server's preview widens."""
    loading = TestClient(create_app(settings, LocalWorker(settings)))
    body = {"code": PAIR, "hole": {"cursor": PAIR.index("right ?"), "task": "identifiers"}}
    assert loading.post("/api/analyze", json=body).status_code == 503
    answer = loading.post("/api/analyze/holes", json=body)
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["aligned"] is False and "the model is starting" in preview["note"]
    (hole,) = preview["holes"]
    assert (hole["start"], hole["end"]) == (hole["target_start"], hole["target_end"])
    assert hole["expected_text"] == "right" == PAIR[hole["start"] : hole["end"]]
    (ready,) = client.post("/api/analyze/holes", json=body).json()["holes"]
    assert (ready["target_start"], ready["target_end"], ready["task"]) == (
        hole["target_start"],
        hole["target_end"],
        hole["task"],
    )
    error = loading.post("/api/analyze/holes", json={"code": PAIR, "tasks": ["boolean_literals"]})
    assert error.status_code == 422 and error.json()["code"] == "invalid_hole"
