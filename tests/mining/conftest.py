"""Fixtures for mining tests: our hand-written Java files, tokenizers, and checks every scenario must pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import JDK_SRC_ZIP, MODELS_CACHE

JAVA_FIXTURES = Path(__file__).resolve().parents[1] / "data" / "java"

needs_jdk = pytest.mark.skipif(
    not JDK_SRC_ZIP.is_file(),
    reason=f"JDK sources not installed ({JDK_SRC_ZIP}); apt-get install openjdk-17-source",
)


@pytest.fixture(scope="session")
def tiny_table():
    """The tiny StarCoder2 tokenizer (has FIM tokens), wrapped for mining."""
    from attnlens.mining import TokenTable
    from attnlens.model.tiny import tiny_starcoder2_tokenizer

    return TokenTable(tiny_starcoder2_tokenizer())


@pytest.fixture(scope="session")
def tiny_fim(tiny_table):
    from attnlens.mining import fim_tokens_of

    return fim_tokens_of(tiny_table.tokenizer)


@pytest.fixture(scope="session")
def smollm2_table():
    """SmolLM2's real tokenizer (no FIM tokens); converts the packaged model once if needed."""
    from attnlens.mining import TokenTable
    from attnlens.model.loading import load_tokenizer

    return TokenTable(load_tokenizer("smollm2", models_dir=MODELS_CACHE))


@pytest.fixture(scope="session")
def fixture_files():
    from attnlens.mining import iter_corpus

    return list(iter_corpus(JAVA_FIXTURES, max_file_bytes=1_000_000))
