"""An API client over the shared tiny atlas, with a real worker holding the tiny model."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from fastapi.testclient import TestClient

from attnlens.api import create_app
from attnlens.service.local import LocalWorker
from attnlens.store import open_store


@pytest.fixture(scope="module")
def atlas_client(tiny_atlas):
    settings, store, _report = tiny_atlas
    worker = LocalWorker(settings)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        yield client


@pytest.fixture(scope="module")
def private_atlas_client(tiny_atlas, tmp_path_factory):
    """A client over a private copy of the tiny atlas, for tests that add to it (analyses, fuzzing);
    the shared one stays as built."""
    settings, _, _ = tiny_atlas
    data = tmp_path_factory.mktemp("private-atlas") / "data"
    data.mkdir()
    with (
        sqlite3.connect(settings.data_dir / "attnlens.db") as source,
        sqlite3.connect(data / "attnlens.db") as copy,
    ):
        source.backup(copy)
    shutil.copytree(settings.index_dir, data / "index")
    mine = settings.model_copy(update={"data_dir": data})
    store = open_store(mine)
    worker = LocalWorker(mine, store)
    worker.start(background=False)
    with TestClient(create_app(mine, worker, store)) as client:
        yield client
