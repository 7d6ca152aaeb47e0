"""An API client over the shared tiny atlas, with a real worker holding the tiny model."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from attnlens.api import create_app
from attnlens.service.local import LocalWorker


@pytest.fixture(scope="module")
def atlas_client(tiny_atlas):
    settings, store, _report = tiny_atlas
    worker = LocalWorker(settings)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        yield client
