"""The `attnlens` command line, run as users run it (a subprocess of the installed entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ATTNLENS = Path(sys.executable).with_name("attnlens")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ATTNLENS), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def test_help_lists_commands_and_global_option():
    done = run("--help")
    assert done.returncode == 0, done.stderr
    for word in ("--data-dir", "models", "serve"):
        assert word in done.stdout


def test_models_lists_presets_with_offline_availability(tmp_path: Path):
    done = run("--data-dir", str(tmp_path), "models")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    row = {line.split()[0]: line.split()[1] for line in lines if line and not line.startswith(" ")}
    assert row["smollm2"] == "yes"
    assert row["tiny-starcoder2"] == "yes"
    assert row["starcoder2-3b"] == "no"  # no network, nothing cached


def test_cli_does_not_import_torch_for_help():
    code = "import sys; from attnlens.cli import app; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"
