"""The same atlas build three ways, side by side: the local engine, Ray with one actor, Ray with two.

Each run is `attnlens atlas build` as a user types it, on a fresh PostgreSQL database of one local server
(durable settings) and a fresh data dir, with the same scenarios (the JDK sources, 12 tasks x 4 = 48 by
default, seed 0), the embedded SmolLM2 (its converted cache shared, so no run converts it) and the shipped
AP-MAE checkpoint. Times are the whole command (model loading and Ray's start-up included: what a user
waits for) and the job's own `seconds` (the local engine's excludes the model load, which happens before
its job starts; Ray's includes the actors' loads), with the phases the job reports (Ray's start, mining,
the wait for the actors' load, the run).
The order of the three rotates between repeats.

Ray gets the machine's CPUs: one actor with all of them (`--cpus-per-actor` = CPUs, so the same torch threads
as the local engine), then two actors with half each.

    .venv/bin/python benchmarks/bench_ray_engine.py [--per-task 4] [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.postgres_server starts the throwaway server the tests use

from attnlens.contracts.tasks import TASKS  # noqa: E402
from tests.postgres_server import fresh_database, postgres_bin, start_server, stop_server  # noqa: E402

ATTNLENS = Path(sys.executable).with_name("attnlens")
JDK = "/usr/lib/jvm/openjdk-17/lib/src.zip"


def engines(cpus: int) -> dict[str, list[str]]:
    return {
        "local": ["--engine", "local"],
        "ray, 1 actor": ["--engine", "ray", "--actors", "1", "--cpus-per-actor", str(cpus)],
        "ray, 2 actors": ["--engine", "ray", "--actors", "2", "--cpus-per-actor", str(max(1, cpus // 2))],
    }


def run(name: str, options: list[str], server: str, per_task: int, tasks: list[str]) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    # The converted SmolLM2 of this checkout, so that no run pays the one-off GGUF conversion.
    (data_dir / "models").mkdir()
    (data_dir / "models" / "smollm2-135m").symlink_to(ROOT / "data" / "models" / "smollm2-135m")
    env = {
        **os.environ,
        "ATTNLENS_DB__URL": fresh_database(server),
        "ATTNLENS_ATLAS__BUILD_DEMO": "false",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    command = [
        str(ATTNLENS), "--data-dir", str(data_dir), "atlas", "build", "--corpus", JDK,
        "--per-task", str(per_task), "--tasks", ",".join(tasks), "--batch-size", "4", *options,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert result["state"] == "succeeded" and result["failed"] == 0, result
    return {
        "wall_s": wall,
        "job_s": result["seconds"],
        "processed": result["processed"],
        "head_patterns": result["head_patterns"],
        **{f"phase_{name}": value for name, value in result.get("phases", {}).items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-task", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("needs PostgreSQL's initdb/pg_ctl (apt-get install postgresql)")
    tasks = [task for task in TASKS if task != "noise"][:12]
    cpus = os.cpu_count() or 1
    plans = engines(cpus)
    server_dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    server = start_server(server_dir, bin_dir, durable=True)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in plans}
    try:
        names = list(plans)
        for repeat in range(args.repeats):
            for name in names[repeat % 3 :] + names[: repeat % 3]:
                runs[name].append(run(name, plans[name], server, args.per_task, tasks))
                print(f"repeat {repeat}: {name}: {runs[name][-1]}", flush=True)
    finally:
        stop_server(server_dir, bin_dir)
    local_wall = statistics.median(r["wall_s"] for r in runs["local"])
    summary = {
        name: {
            "wall_s_median": round(statistics.median(r["wall_s"] for r in rs), 1),
            "job_s_median": round(statistics.median(r["job_s"] for r in rs), 1),
            "wall_vs_local": round(statistics.median(r["wall_s"] for r in rs) / local_wall, 3),
            "inferences": rs[0]["processed"],
        }
        for name, rs in runs.items()
    }
    result = {"machine": f"{platform.machine()}, {cpus} CPUs", "summary": summary, "runs": runs}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
