"""Exports: what the pages show, as CSV or Parquet files that leave the app (`.csv` or `.parquet` at the end
of the path). Each file's columns are the API's own fields (the same names and values as its JSON), one row
per thing. CSV: floats are written exactly (they read back equal), empty cells are nulls, booleans are
`true`/`false`, head lists are space-separated names. Parquet: typed columns (nulls as nulls, head lists as
lists of strings, times as UTC timestamps).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal
from urllib.parse import quote

import pyarrow as pa
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response, StreamingResponse

from attnlens.api.deps import ModelQuery, SettingsDep, StoreDep
from attnlens.api.parquet import MEDIA_TYPE, model_types, parquet_bytes
from attnlens.api.routes.inferences import inference_summary
from attnlens.api.routes.predictors import predictor_summary
from attnlens.api.schemas import InferenceSummary, PredictorSummary
from attnlens.contracts.jobs import ABLATION_EXPERIMENT
from attnlens.errors import NotFound
from attnlens.store import Store
from attnlens.store.analyses import latest_clustering, latest_map, map_points, map_size, newest_predictors
from attnlens.store.inferences import InferenceFilter, list_inferences
from attnlens.store.jobs import get_job

router = APIRouter(tags=["exports"])

_PAGE = 500
_FLUSH_CHARS = 1 << 16
EXPERIMENT_COLUMNS = (
    "job", "task", "rule", "n", "n_heads", "heads", "accuracy", "accuracy_low", "accuracy_high", "change",
    "change_low", "change_high", "i2c", "i2c_low", "i2c_high", "c2i", "c2i_low", "c2i_high",
)  # fmt: skip
MAP_COLUMNS = ("x", "y", "pattern_id", "layer", "head", "task", "first_token_correct", "cluster")
EXPERIMENT_TYPES = {
    "job": pa.int64(), "task": pa.string(), "rule": pa.string(), "n": pa.int64(), "n_heads": pa.int64(),
    "heads": pa.list_(pa.string()), **{c: pa.float64() for c in EXPERIMENT_COLUMNS[6:]},
}  # fmt: skip
MAP_TYPES = {
    "x": pa.float64(), "y": pa.float64(), "pattern_id": pa.int64(), "layer": pa.int64(), "head": pa.int64(),
    "task": pa.string(), "first_token_correct": pa.bool_(), "cluster": pa.int64(),
}  # fmt: skip
Format = Literal["csv", "parquet"]
FormatPath = Annotated[Format, Path(description="`csv` or `parquet`.")]


def cell(value: Any) -> str:
    """One CSV cell: null -> empty, booleans as words, floats exactly (repr round-trips), lists joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def _disposition(filename: str) -> str:
    # Headers are Latin-1: an ASCII name for every client, the exact one (RFC 6266) for those that read it.
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def table_file(
    stem: str,
    fmt: Format,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    column_types: dict[str, pa.DataType],
) -> Response:
    """`rows` as `stem.csv` (streamed) or `stem.parquet` (typed by `column_types`)."""
    if fmt == "csv":
        return csv_file(f"{stem}.csv", header, rows)
    disposition = _disposition(f"{stem}.parquet")
    body = parquet_bytes(header, rows, column_types)
    return Response(body, media_type=MEDIA_TYPE, headers={"Content-Disposition": disposition})


def csv_file(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> StreamingResponse:
    """Stream `rows` under `header` as a CSV download (written in chunks: a map has many rows)."""

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([cell(v) for v in row])
            if buffer.tell() > _FLUSH_CHARS:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    headers = {"Content-Disposition": _disposition(filename)}
    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers=headers)


def _inference_rows(store: Store, where: InferenceFilter) -> Iterator[list[Any]]:
    # Own sessions, page by page: the response streams after the request's session has closed. Each page
    # continues below the last id written (not at an offset): rows stored meanwhile (pastes) have higher
    # ids, so they can neither shift a row into a second page nor push one out.
    names = list(InferenceSummary.model_fields)
    while True:
        with store.session() as session:
            _, page = list_inferences(session, where, limit=_PAGE, offset=0)
            rows = [inference_summary(inference).model_dump() for inference in page]
        yield from ([row[name] for name in names] for row in rows)
        if len(rows) < _PAGE:
            return
        where = replace(where, below_id=rows[-1]["id"])


@router.get("/exports/inferences.{fmt}", response_class=Response)
def export_inferences(
    fmt: FormatPath,
    store: StoreDep,
    settings: SettingsDep,
    model: ModelQuery = None,
    task: Annotated[str | None, Query(max_length=64, description="Only this mining task.")] = None,
    source: Annotated[
        Literal["mined", "pasted"] | None, Query(description="Only mined (the atlas) or only pasted rows.")
    ] = None,
) -> Response:
    """Every inference of the model (newest first) with its correctness and the model's confidence at the
    hole: the columns of GET /api/inferences."""
    name = model or settings.model.name
    where = InferenceFilter(task=task, model_name=name, source=source)
    return table_file(
        f"{name}-inferences", fmt, list(InferenceSummary.model_fields), _inference_rows(store, where),
        model_types(InferenceSummary),
    )  # fmt: skip


@router.get("/exports/predictors.{fmt}", response_class=Response)
def export_predictors(
    fmt: FormatPath, store: StoreDep, settings: SettingsDep, model: ModelQuery = None
) -> Response:
    """The newest predictor of each (task, kind) with its cross-validated quality: GET /api/predictors."""
    name = model or settings.model.name
    names = list(PredictorSummary.model_fields)
    rows = [PredictorSummary(**predictor_summary(row)).model_dump() for row in newest_predictors(store, name)]
    values = ([row[n] for n in names] for row in rows)
    return table_file(f"{name}-predictors", fmt, names, values, model_types(PredictorSummary))


@router.get("/exports/experiments/{job_id}.{fmt}", response_class=Response)
def export_experiment(
    store: StoreDep,
    job_id: Annotated[int, Path(ge=1, le=2**62, description="The experiment's job id.")],
    fmt: FormatPath,
) -> Response:
    """A finished ablation experiment's rows: per rule and head count, the ablated heads, the accuracy and
    the flips, each with its 95% interval (as the experiment page's table)."""
    job = get_job(store, job_id)
    if job.kind != ABLATION_EXPERIMENT or job.state != "succeeded" or not job.result:
        raise NotFound(f"job {job_id} is not a finished ablation experiment; GET /api/jobs lists them.")
    task = job.result.get("task") or (job.parameters or {}).get("task")
    rows = [
        # Rows from before n_heads was recorded: the heads they name are the ones ablated.
        {
            "job": job.id,
            "task": task,
            **row,
            "n_heads": row.get("n_heads", len(row.get("heads") or []) or None),
        }
        for row in job.result.get("rows", [])
    ]
    values = ([r.get(c) for c in EXPERIMENT_COLUMNS] for r in rows)
    return table_file(f"experiment-{job_id}", fmt, EXPERIMENT_COLUMNS, values, EXPERIMENT_TYPES)


@router.get("/exports/maps/latest.{fmt}", response_class=Response)
def export_map(fmt: FormatPath, store: StoreDep, settings: SettingsDep, model: ModelQuery = None) -> Response:
    """Every point of the model's newest map (all of them, not the page's sample) with its head, task,
    first-token correctness and cluster in the newest clustering."""
    name = model or settings.model.name
    pattern_map = latest_map(store, name)
    if pattern_map is None:
        raise NotFound(f"{name} has no map yet; GET /api/analyses/status says whether one is being made.")
    clustering = latest_clustering(store, name)
    with store.session() as session:
        total = map_size(session, pattern_map.id)
        rows = map_points(
            session, pattern_map.id, clustering.id if clustering else None, total=total, max_points=total
        )
    return table_file(f"{name}-map-{pattern_map.id}", fmt, MAP_COLUMNS, rows, MAP_TYPES)
