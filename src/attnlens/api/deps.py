"""Dependency aliases, declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from attnlens.config import Settings
from attnlens.service.protocol import WorkerClient


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_worker(request: Request) -> WorkerClient:
    return request.app.state.worker


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
WorkerDep = Annotated[WorkerClient, Depends(get_worker)]
