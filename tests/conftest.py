"""Shared fixtures: settings on a temporary data dir, the tiny StarCoder2, the real SmolLM2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attnlens.config import Settings

REPO = Path(__file__).resolve().parents[1]
# SmolLM2 is converted from the package's GGUF once (about 20 s) into this cache and reused by later
# runs; it is the same cache `make run` uses, so the two commands share one conversion.
MODELS_CACHE = Path(os.environ.get("ATTNLENS_TEST_MODELS_DIR", REPO / "data" / "models"))
JDK_SRC_ZIP = Path("/usr/lib/jvm/openjdk-17/lib/src.zip")
CHROMIUM = Path("/usr/bin/chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA: no GPU on this machine (run on a GPU machine to exercise)")
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
