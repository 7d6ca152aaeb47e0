"""Every export round-trips: the CSV written by the API, read back with the csv module, equals what the JSON
API says of the same rows (floats exactly, nulls as nulls, booleans as booleans), on the full atlas (a map,
predictors, a finished experiment)."""

from __future__ import annotations

import csv
import io
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from attnlens.api.routes import exports
from attnlens.api.routes.exports import EXPERIMENT_COLUMNS, MAP_COLUMNS
from attnlens.api.schemas import InferenceSummary, PredictorSummary

pytestmark = pytest.mark.slow


def read_csv(response) -> tuple[list[str], list[dict[str, str]]]:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    reader = csv.DictReader(io.StringIO(response.text))
    return list(reader.fieldnames or []), list(reader)


def read_back(text: str, kind: Any) -> Any:
    """A cell as the value of its column's type (a type, or `T | None`): what a reader that knows the
    columns does. An empty cell is null in a nullable column and the empty text in a text one."""
    if typing.get_origin(kind) is list:
        return text.split(" ") if text else []
    args = typing.get_args(kind)
    nullable = type(None) in args
    base = next((a for a in args if a is not type(None)), kind) if args else kind
    if text == "":
        return None if nullable else ("" if base is str else pytest.fail(f"empty cell in a {kind} column"))
    if base is bool:
        return {"true": True, "false": False}[text]
    if base in (int, float):
        return base(text)
    return text


def types_of(model: type[BaseModel]) -> dict[str, Any]:
    return {name: field.annotation for name, field in model.model_fields.items()}


def assert_round_trip(
    rows: list[dict[str, str]], expected: list[dict[str, Any]], types: dict[str, Any]
) -> None:
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert {name: read_back(row[name], kind) for name, kind in types.items()} == {
            n: want[n] for n in types
        }


def every_inference(client) -> list[dict[str, Any]]:
    """GET /api/inferences of the served model, every page."""
    model = client.get("/api/health").json()["worker"]["model"]["name"]
    listed: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = client.get("/api/inferences", params={"model": model, "limit": 200, "offset": offset}).json()
        listed += page["items"]
        offset += 200
        if offset >= page["total"]:
            return listed


def test_inferences_export_equals_the_list_api(full_atlas, monkeypatch):
    client, _ = full_atlas
    monkeypatch.setattr(exports, "_PAGE", 50)  # the export reads in pages: make this atlas span several
    listed = every_inference(client)
    columns, rows = read_csv(client.get("/api/exports/inferences.csv"))
    assert columns == list(listed[0]) == list(InferenceSummary.model_fields)
    assert len(rows) > 3 * 50
    assert_round_trip(rows, listed, types_of(InferenceSummary))
    assert any(r["top1_prob"] for r in rows) and any(r["first_token_correct"] == "false" for r in rows)
    _, pasted = read_csv(client.get("/api/exports/inferences.csv", params={"source": "pasted"}))
    assert all(r["source"] == "pasted" for r in pasted)


def test_predictors_export_equals_the_predictors_api(full_atlas):
    client, _ = full_atlas
    listed = client.get("/api/predictors").json()
    columns, rows = read_csv(client.get("/api/exports/predictors.csv"))
    assert columns == list(listed[0]) and len(rows) >= 2
    types = {name: kind for name, kind in types_of(PredictorSummary).items() if name != "created_at"}
    assert_round_trip(rows, listed, types)
    for row, want in zip(rows, listed, strict=True):  # str(datetime) in the CSV, ISO 8601 in JSON
        assert datetime.fromisoformat(row["created_at"]) == datetime.fromisoformat(want["created_at"])


def test_experiment_export_equals_the_jobs_rows(full_atlas):
    client, ids = full_atlas
    job = client.get(f"/api/jobs/{ids['experiment_job_id']}").json()
    columns, rows = read_csv(client.get(f"/api/exports/experiments/{ids['experiment_job_id']}.csv"))
    assert columns == list(EXPERIMENT_COLUMNS)
    words = {"job": int, "task": str, "rule": str, "n": int, "n_heads": int, "heads": list[str]}
    floats = {name: float for name in EXPERIMENT_COLUMNS if name not in words}
    expected = [{"job": job["id"], "task": job["result"]["task"], **row} for row in job["result"]["rows"]]
    assert_round_trip(rows, expected, {**words, **floats})
    not_one = client.get(f"/api/exports/experiments/{ids['inference_id'] + 10**9}.csv")
    assert not_one.status_code == 404 and not_one.json()["code"] == "not_found"


def test_map_export_holds_every_point_as_the_map_api_does(full_atlas):
    client, _ = full_atlas
    shown = client.get("/api/maps/latest", params={"max_points": 5_000_000}).json()
    columns, rows = read_csv(client.get("/api/exports/maps/latest.csv"))
    assert columns == list(MAP_COLUMNS) and len(rows) == shown["total"] == shown["shown"]
    points = shown["points"]
    api_names = ("x", "y", "id", "layer", "head", "task", "correct", "cluster")
    expected = [
        {csv_name: points[api_name][i] for csv_name, api_name in zip(MAP_COLUMNS, api_names, strict=True)}
        for i in range(len(rows))
    ]
    types = {"x": float, "y": float, "pattern_id": int, "layer": int, "head": int, "task": str | None,
             "first_token_correct": bool | None, "cluster": int | None}  # fmt: skip
    assert_round_trip(rows, expected, types)


def test_a_model_name_outside_latin_1_still_names_the_file(full_atlas):
    """Found by the schema fuzz: the file name went into a Latin-1 header as it was (a crash)."""
    client, _ = full_atlas
    response = client.get("/api/exports/inferences.csv", params={"model": "模型/ā"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="____-inferences.csv"; '
        "filename*=UTF-8''%E6%A8%A1%E5%9E%8B%2F%C4%81-inferences.csv"
    )
    assert response.text.splitlines() == [",".join(InferenceSummary.model_fields)]  # no such model: no rows


def test_rows_stored_while_the_export_streams_neither_repeat_nor_drop_a_row(
    private_atlas_client, monkeypatch
):
    """The export reads page by page; a paste stored between two pages used to shift the newest-first
    offsets, so the next page began with a row already written."""
    from attnlens.store.inferences import InferenceFilter
    from tests.index.space_rows import add_inferences

    monkeypatch.setattr(exports, "_PAGE", 4)
    store = private_atlas_client.app.state.store
    model = private_atlas_client.get("/api/health").json()["worker"]["model"]["name"]
    before = [
        item["id"]
        for item in private_atlas_client.get("/api/inferences", params={"limit": 200}).json()["items"]
    ]
    rows = exports._inference_rows(store, InferenceFilter(model_name=model))
    written = [next(rows)[0] for _ in range(6)]  # one page and a half
    add_inferences(store, model=model, embedder=None, dim=32, n=3, seed=11)  # stored meanwhile
    written += [row[0] for row in rows]
    assert written == before  # each row once, none lost; the new ones come after the export began


def read_parquet(response) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert '.parquet"' in response.headers["content-disposition"]
    return pq.read_table(io.BytesIO(response.content)).to_pylist()


def test_every_export_round_trips_as_parquet(full_atlas):
    """Written as Parquet, read back with pyarrow: equal to what the JSON API says, typed (nulls as nulls,
    head lists as lists, times as UTC timestamps)."""
    client, ids = full_atlas
    assert read_parquet(client.get("/api/exports/inferences.parquet")) == every_inference(client)

    predictors = client.get("/api/predictors").json()
    rows = read_parquet(client.get("/api/exports/predictors.parquet"))
    for row, want in zip(rows, predictors, strict=True):
        assert row.pop("created_at") == datetime.fromisoformat(want.pop("created_at")).replace(tzinfo=UTC)
        assert row == want

    job = client.get(f"/api/jobs/{ids['experiment_job_id']}").json()
    rows = read_parquet(client.get(f"/api/exports/experiments/{ids['experiment_job_id']}.parquet"))
    assert rows == [
        {c: {"job": job["id"], "task": job["result"]["task"], **r}.get(c) for c in EXPERIMENT_COLUMNS}
        for r in job["result"]["rows"]
    ]

    shown = client.get("/api/maps/latest", params={"max_points": 5_000_000}).json()["points"]
    rows = read_parquet(client.get("/api/exports/maps/latest.parquet"))
    api_names = ("x", "y", "id", "layer", "head", "task", "correct", "cluster")
    pairs = list(zip(MAP_COLUMNS, api_names, strict=True))
    assert rows == [{name: shown[api][i] for name, api in pairs} for i in range(len(rows))]
    assert len(rows) == len(shown["x"])


def test_an_export_of_nothing_is_a_file_with_its_columns(full_atlas):
    import pyarrow.parquet as pq

    client, _ = full_atlas
    response = client.get("/api/exports/inferences.parquet", params={"model": "no-such-model"})
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == 0 and table.column_names == list(InferenceSummary.model_fields)
    other = client.get("/api/exports/inferences.xlsx")
    assert (other.status_code, other.json()["code"]) == (422, "invalid_request")
