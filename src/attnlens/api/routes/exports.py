"""Exports: what the pages show, as CSV files that leave the app. Each file's columns are the API's own fields
(the same names and values as its JSON), one row per thing; floats are written exactly (they read back equal),
empty cells are nulls, booleans are `true`/`false`, head lists are space-separated names.

Parquet is not offered yet: it needs pyarrow (about 40 MB) for what CSV already carries exactly.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from attnlens.api.deps import ModelQuery, SettingsDep, StoreDep
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

    # Headers are Latin-1: an ASCII name for every client, the exact one (RFC 6266) for those that read it.
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    disposition = f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
    return StreamingResponse(
        chunks(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition}
    )


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


@router.get("/exports/inferences.csv", response_class=StreamingResponse)
def export_inferences(
    store: StoreDep,
    settings: SettingsDep,
    model: ModelQuery = None,
    task: Annotated[str | None, Query(max_length=64, description="Only this mining task.")] = None,
    source: Annotated[
        Literal["mined", "pasted"] | None, Query(description="Only mined (the atlas) or only pasted rows.")
    ] = None,
) -> StreamingResponse:
    """Every inference of the model (newest first) with its correctness and the model's confidence at the
    hole: the columns of GET /api/inferences."""
    name = model or settings.model.name
    where = InferenceFilter(task=task, model_name=name, source=source)
    return csv_file(
        f"{name}-inferences.csv", list(InferenceSummary.model_fields), _inference_rows(store, where)
    )


@router.get("/exports/predictors.csv", response_class=StreamingResponse)
def export_predictors(store: StoreDep, settings: SettingsDep, model: ModelQuery = None) -> StreamingResponse:
    """The newest predictor of each (task, kind) with its cross-validated quality: GET /api/predictors."""
    name = model or settings.model.name
    names = list(PredictorSummary.model_fields)
    rows = [PredictorSummary(**predictor_summary(row)).model_dump() for row in newest_predictors(store, name)]
    return csv_file(f"{name}-predictors.csv", names, ([row[n] for n in names] for row in rows))


@router.get("/exports/experiments/{job_id}.csv", response_class=StreamingResponse)
def export_experiment(
    store: StoreDep, job_id: Annotated[int, Path(ge=1, le=2**62, description="The experiment's job id.")]
) -> StreamingResponse:
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
    return csv_file(
        f"experiment-{job_id}.csv", EXPERIMENT_COLUMNS, ([r.get(c) for c in EXPERIMENT_COLUMNS] for r in rows)
    )


@router.get("/exports/maps/latest.csv", response_class=StreamingResponse)
def export_map(store: StoreDep, settings: SettingsDep, model: ModelQuery = None) -> StreamingResponse:
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
    return csv_file(f"{name}-map-{pattern_map.id}.csv", MAP_COLUMNS, rows)
