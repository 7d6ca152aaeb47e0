"""benchmarks/gpu_suite.py: its quick CPU run writes every section with figures or a reason, and its section
runner records errors and skips instead of dying (the GPU run is unattended and gets one try)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from numbers import Number
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_suite.py"
SECTIONS = ("forward", "apmae", "build", "api")


@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, str(SCRIPT.parent))  # the script imports its bench_* neighbours by name
    try:
        spec = importlib.util.spec_from_file_location("gpu_suite", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPT.parent))


def has_numbers(value) -> bool:
    if isinstance(value, Number) and not isinstance(value, bool):
        return True
    if isinstance(value, dict):
        return any(has_numbers(v) for v in value.values())
    if isinstance(value, list):
        return any(has_numbers(v) for v in value)
    return False


def test_quick_cpu_run_writes_every_section(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--device", "cpu", "--quick", "--budget-s", "45"],
        cwd=REPO, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert out.is_file(), done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert done.returncode == 0, (data.get("sections"), done.stderr[-3000:])
    assert data["status"] == "done" and data["quick"] is True
    assert data["machine"]["torch"] and data["machine"]["cpu"] and data["setup"]["import_s"] > 0
    assert set(data["sections"]) == set(SECTIONS)
    for name, entry in data["sections"].items():
        assert entry["status"] in ("ok", "partial", "skipped"), (name, entry)
        if entry["status"] == "skipped":
            assert entry["reason"], name
        else:
            assert entry["seconds"] >= 0 and has_numbers(entry["results"]), (name, entry)
            assert "peak_gpu_memory_mib" in entry  # None on a CPU
    # The first section always has its time on this machine: the suite did measure something.
    forward = data["sections"]["forward"]
    assert forward["status"] in ("ok", "partial")
    assert forward["results"]["float32"]["batches"]["1"]["ms_per_seq_median"] > 0
    if data["sections"]["api"]["status"] == "ok":
        kinds = data["sections"]["api"]["results"]["kinds"]
        for kind in ("analyze", "ablate_first", "ablate_again", "neighbors", "thumbnail"):
            assert kinds[kind]["p50_ms"] > 0, (kind, kinds[kind])


def test_a_failing_section_is_recorded_and_the_next_one_runs(suite, tmp_path):
    report = suite.Report(tmp_path / "r.json", {"sections": {}})
    budget = suite.Budget(60)

    def broken(section):
        section.results["before"] = 1.5
        raise ValueError("boom")

    def fine(section):
        section.results["x_ms"] = 2.0

    first = suite.run_section(report, budget, "forward", broken, share=0.5, min_seconds=1, device=None)
    second = suite.run_section(report, budget, "apmae", fine, share=1.0, min_seconds=1, device=None)
    written = json.loads((tmp_path / "r.json").read_text())["sections"]
    assert first["status"] == "error" and "ValueError: boom" in first["error"]
    assert written["forward"]["results"] == {"before": 1.5}  # what it measured before failing is kept
    assert second["status"] == written["apmae"]["status"] == "ok"
    assert written["apmae"]["results"] == {"x_ms": 2.0} and written["apmae"]["peak_gpu_memory_mib"] is None

    def needs_atlas(section):
        raise suite.Skip("no atlas to serve")

    third = suite.run_section(report, budget, "api", needs_atlas, share=1.0, min_seconds=1, device=None)
    assert third["status"] == "skipped" and third["reason"] == "no atlas to serve"


def test_sections_past_their_share_of_the_budget_are_skipped_with_a_reason(suite, tmp_path):
    report = suite.Report(tmp_path / "r.json", {"sections": {}})
    budget = suite.Budget(10)
    budget.started -= 9  # 9 of 10 s gone

    def never(section):
        raise AssertionError("must not run")

    entry = suite.run_section(report, budget, "build", never, share=0.75, min_seconds=1, device=None)
    assert entry["status"] == "skipped" and "out of time" in entry["reason"]

    def slow(section):
        times = suite.repeat_timed(section, lambda: time.sleep(0.3), 50, "sleeps")
        section.results["n"] = len(times)

    budget = suite.Budget(2)
    entry = suite.run_section(report, budget, "api", slow, share=1.0, min_seconds=0.5, device=None)
    assert entry["status"] == "partial" and 1 <= entry["results"]["n"] < 50
    assert "out of time" in entry["results"]["skipped"]["sleeps"]


def test_the_watchdog_writes_the_report_and_ends_a_hung_run(tmp_path):
    out = tmp_path / "r.json"
    code = (
        "import sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import gpu_suite as g; "
        "r = g.Report(Path(sys.argv[2]), {'sections': {'build': {'status': 'running'}, "
        "'api': {'status': 'pending'}}}); g.start_watchdog(r, 0.3); time.sleep(30)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(SCRIPT.parent), str(out)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    data = json.loads(out.read_text())
    assert data["status"] == "killed" and "watchdog" in data["killed_reason"]
    assert data["sections"]["build"]["status"] == "killed" and data["sections"]["api"]["status"] == "skipped"


def test_without_cuda_nothing_runs_and_the_report_says_why(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--device", "cuda", "--quick"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["status"] == "no device" and data["machine"]["cuda_available"] is False
    assert all(e["reason"] == "CUDA is not available here" for e in data["sections"].values())
