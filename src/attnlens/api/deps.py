"""Dependency aliases, declared once, and load-or-404 dependencies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from attnlens.config import Settings
from attnlens.errors import NotFound
from attnlens.service.protocol import WorkerClient
from attnlens.store import Store
from attnlens.store.inferences import get_inference
from attnlens.store.models import Inference


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_worker(request: Request) -> WorkerClient:
    return request.app.state.worker


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_session(store: Annotated[Store, Depends(get_store)]) -> Iterator[Session]:
    with store.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
WorkerDep = Annotated[WorkerClient, Depends(get_worker)]
StoreDep = Annotated[Store, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]
# `?model=` of the analysis endpoints (maps, clusters, predictors); None means the served model.
ModelQuery = Annotated[
    str | None, Query(max_length=200, description="Target model [default: the served one].")
]


def valid_inference_id(
    inference_id: Annotated[int, Path(ge=1, le=2**62, description="An inference id.")], session: SessionDep
) -> Inference:
    inference = get_inference(session, inference_id)
    if inference is None:
        raise NotFound(f"no inference with id {inference_id}; list them with GET /api/inferences.")
    return inference


InferenceDep = Annotated[Inference, Depends(valid_inference_id)]
