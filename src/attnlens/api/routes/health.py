"""Liveness and what is loaded."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from attnlens import __version__
from attnlens.api.deps import SettingsDep, StoreDep, WorkerDep
from attnlens.atlas.summary import atlas_counts

router = APIRouter(tags=["health"])


class HealthPublic(BaseModel):
    """Server status: the model the worker holds (or is loading) and where data lives."""

    ok: bool = Field(description="True once the server answers; see `worker.state` for the model.")
    version: str
    data_dir: str
    worker: dict[str, Any] = Field(
        description="`state` (starting, loading, ready, error), `model` info, `apmae`, `error`."
    )
    atlas: dict[str, Any] = Field(
        description="Counts: scenarios, inferences, head patterns, jobs by state, index size."
    )


@router.get("/health", response_model=HealthPublic)
def read_health(settings: SettingsDep, worker: WorkerDep, store: StoreDep) -> HealthPublic:
    """Server status: the loaded model and AP-MAE, atlas counts and job states."""
    return HealthPublic(
        ok=True,
        version=__version__,
        data_dir=str(settings.data_dir),
        worker=worker.status(),
        atlas=atlas_counts(settings, store),
    )
