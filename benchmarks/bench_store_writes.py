"""Head patterns written per second: SQLite (as shipped: WAL, synchronous=NORMAL) against PostgreSQL (a local
server with its default, durable settings), through the store's API as the atlas build writes: one
transaction per inference holding its head patterns (SmolLM2's 270 by default, 128-d float16 embeddings,
32x32 lower-triangle thumbnails, the statistics and scores).

Each case runs on a fresh database, by one writer and by two writer processes at once (what two Ray actors
do); the order of the cases alternates between repeats, and the median is reported.

    .venv/bin/python benchmarks/bench_store_writes.py [--inferences 60] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.postgres_server starts the throwaway server the tests use

from attnlens.config import Settings  # noqa: E402
from attnlens.contracts.head_scores import RELATIONAL_SCORE_NAMES  # noqa: E402
from attnlens.heads import HeadRef  # noqa: E402
from attnlens.store import open_store, save_scenarios  # noqa: E402
from attnlens.store.patterns import STAT_COLUMNS, save_inference_with_heads  # noqa: E402
from tests.postgres_server import fresh_database, postgres_bin, start_server, stop_server  # noqa: E402
from tests.store.test_scenarios import MinedScenario  # noqa: E402

LAYERS, HEADS_PER_LAYER, DIM, THUMB = 30, 9, 128, 32


def _payload(rng: np.random.Generator, n: int) -> dict:
    stats = {name: rng.random(n) for name in (*STAT_COLUMNS, *RELATIONAL_SCORE_NAMES)}
    return {
        "embeddings": rng.standard_normal((n, DIM)).astype(np.float32),
        "thumbnails": rng.integers(0, 255, (n, THUMB, THUMB), dtype=np.uint8),
        "stats": stats,
        "reconstruction_errors": rng.random(n),
    }


def _write(url: str, data_dir: str, scenario_ids: list[int], seed: int) -> tuple[float, float]:
    """Write one inference per scenario id; returns when the writing began and ended (wall clock, so that
    the processes' spans compare; setup excluded)."""
    store = open_store(Settings(data_dir=Path(data_dir), db={"url": url}))
    heads = [HeadRef(layer, head) for layer in range(LAYERS) for head in range(HEADS_PER_LAYER)]
    rng = np.random.default_rng(seed)
    payloads = [_payload(rng, len(heads)) for _ in scenario_ids]
    started = time.time()
    for scenario_id, payload in zip(scenario_ids, payloads, strict=True):
        saved = save_inference_with_heads(
            store,
            inference={"model_name": "bench", "scenario_id": scenario_id, "completion_text": "x"},
            heads=heads,
            **payload,
        )
        assert saved is not None
    return started, time.time()


def _scenario_ids(url: str, data_dir: Path, n: int) -> list[int]:
    store = open_store(Settings(data_dir=data_dir, db={"url": url}))
    scenarios = [replace(MinedScenario(), hole_start=i, hole_end=i + 1) for i in range(n)]  # distinct keys
    with store.session() as session:
        ids = save_scenarios(session, scenarios, model_name="bench")
    store.dispose()
    return ids


def run_case(backend: str, writers: int, n: int, pg_server: str | None, workdir: Path) -> float:
    """Patterns per second of `writers` processes writing `n` inferences in all into a fresh database."""
    data_dir = Path(tempfile.mkdtemp(dir=workdir))
    url = fresh_database(pg_server) if backend == "postgresql" else f"sqlite:///{data_dir}/attnlens.db"
    ids = _scenario_ids(url, data_dir, n)
    shares = [ids[i::writers] for i in range(writers)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(writers) as pool:
        spans = pool.starmap(_write, [(url, str(data_dir), share, i) for i, share in enumerate(shares)])
    # From the first writer's start to the last one's end: the processes' start-up is left out.
    return n * LAYERS * HEADS_PER_LAYER / (max(end for _, end in spans) - min(start for start, _ in spans))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inferences", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("needs PostgreSQL's initdb/pg_ctl (apt-get install postgresql)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-writes-"))
    server_dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    server = start_server(server_dir, bin_dir, durable=True)
    cases = [(b, w) for b in ("sqlite", "postgresql") for w in (1, 2)]
    rates: dict[str, list[float]] = {f"{b}, {w} writer(s)": [] for b, w in cases}
    try:
        for repeat in range(args.repeats):
            for backend, writers in cases if repeat % 2 == 0 else reversed(cases):
                rate = run_case(backend, writers, args.inferences, server, workdir)
                rates[f"{backend}, {writers} writer(s)"].append(rate)
                print(f"repeat {repeat}: {backend}, {writers} writer(s): {rate:,.0f} patterns/s", flush=True)
    finally:
        stop_server(server_dir, bin_dir)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "inferences": args.inferences,
        "patterns_per_inference": LAYERS * HEADS_PER_LAYER,
        "median_patterns_per_second": {k: round(statistics.median(v)) for k, v in rates.items()},
        "all": {k: [round(r) for r in v] for k, v in rates.items()},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
