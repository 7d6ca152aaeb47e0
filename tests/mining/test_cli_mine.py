"""`attnlens mine`: table output, storing through the project store, dry runs, idempotent re-runs."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from attnlens.cli import app, main
from attnlens.config import Settings
from attnlens.mining import TASKS
from attnlens.store import open_store
from attnlens.store.codecs import unpack_token_ids
from attnlens.store.models import CorpusFile, Scenario
from tests.mining.conftest import JAVA_FIXTURES


def run_mine(data_dir, *extra):
    args = [
        "--data-dir",
        str(data_dir),
        "mine",
        "--corpus",
        str(JAVA_FIXTURES),
        "--model",
        "tiny-starcoder2",
        "--context",
        "48",
        *extra,
    ]
    return CliRunner().invoke(app, args, catch_exceptions=False)


def stored(data_dir):
    store = open_store(Settings(data_dir=data_dir))
    try:
        with store.session() as session:
            rows = session.execute(select(Scenario, CorpusFile).join(CorpusFile)).all()
            return [
                (s.task, s.model_name, s.mode, unpack_token_ids(s.prompt_ids), f.path, f.n_bytes)
                for s, f in rows
            ]
    finally:
        store.dispose()


def test_mine_stores_scenarios_and_prints_the_table(tmp_path):
    data_dir = tmp_path / "data"
    result = run_mine(data_dir, "--per-task", "2", "--tasks", "identifiers,eol,noise", "--seed", "5")
    assert result.exit_code == 0, result.output
    assert "FIM (PSM order)" in result.output
    for task in ("identifiers", "eol", "noise"):
        assert any(
            line.split()[:1] == [task] and line.split()[2] == "2" for line in result.output.splitlines()
        )
    assert "files read: " in result.output and "stored 6 scenarios" in result.output
    rows = stored(data_dir)
    assert Counter(r[0] for r in rows) == {"identifiers": 2, "eol": 2, "noise": 2}
    assert {(r[1], r[2]) for r in rows} == {("tiny-starcoder2", "fim")}
    assert all(len(r[3]) == 48 for r in rows)
    sizes = {f.name: f.stat().st_size for f in JAVA_FIXTURES.rglob("*.java")}
    assert all(r[5] == sizes[r[4].rsplit("/", 1)[-1]] for r in rows)

    again = run_mine(data_dir, "--per-task", "2", "--tasks", "identifiers,eol,noise", "--seed", "5")
    assert again.exit_code == 0
    assert len(stored(data_dir)) == 6  # same seed, same scenarios: nothing doubled


def test_dry_run_stores_nothing(tmp_path):
    data_dir = tmp_path / "data"
    result = run_mine(data_dir, "--per-task", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: nothing stored" in result.output
    assert f"{'total':<24}" in result.output
    for task in TASKS:
        assert task in result.output
    assert not (data_dir / "attnlens.db").exists()


def test_unknown_task_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "--data-dir",
                str(tmp_path),
                "mine",
                "--corpus",
                str(JAVA_FIXTURES),
                "--tasks",
                "keywords",
                "--dry-run",
            ]
        )
    assert exit_info.value.code == 2
    assert "unknown task(s) keywords" in capsys.readouterr().err
