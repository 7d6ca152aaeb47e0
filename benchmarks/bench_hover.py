"""What the map's hover costs, side by side: the stored thumbnail (GET /api/patterns/{id}/thumbnail, a
database read) against the full pattern the hover used to fetch (GET /api/patterns/{id}, recomputed by the
model), on random patterns of an atlas; and what opening the index with its repair checks costs at start-up.

    .venv/bin/python benchmarks/bench_hover.py --data-dir /work/realatlas [--n 200] [--model-calls 20]

In-process (FastAPI's TestClient: no sockets), one request at a time, after one warm-up of each. Read-only
on the atlas (no paste, no job). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path

from bench_api import percentile
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from attnlens.api import create_app
from attnlens.atlas.indexing import open_repaired_index
from attnlens.config import Settings
from attnlens.service.local import LocalWorker
from attnlens.store import open_store
from attnlens.store.models import HeadPattern


def timed(client: TestClient, paths: list[str]) -> dict[str, float]:
    client.get(paths[0])  # warm-up
    times = []
    for path in paths:
        start = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
    return {
        "n": len(times),
        "p50_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * percentile(times, 0.95),
        "max_ms": 1000 * max(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=200, help="thumbnail requests")
    parser.add_argument("--model-calls", type=int, default=20, help="full-pattern requests (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    settings = Settings(data_dir=args.data_dir)
    store = open_store(settings)
    start = time.perf_counter()
    index = open_repaired_index(settings, store)
    open_seconds = time.perf_counter() - start
    with store.session() as session:
        top = int(session.scalar(select(func.max(HeadPattern.id))) or 0)
        count = int(session.scalar(select(func.count()).select_from(HeadPattern)) or 0)
    rng = random.Random(args.seed)
    ids = [rng.randint(1, top) for _ in range(args.n)]
    worker = LocalWorker(settings, store)
    result: dict[str, object] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "atlas": {"head_patterns": count, "index_vectors": index.count},
        "open_repaired_index_s": open_seconds,
    }
    if args.model_calls:
        worker.start(background=False)  # loads the model: the full pattern needs it
    client = TestClient(create_app(settings, worker, store))
    result["thumbnail"] = timed(client, [f"/api/patterns/{i}/thumbnail" for i in ids])
    if args.model_calls:
        result["full_pattern"] = timed(client, [f"/api/patterns/{i}" for i in ids[: args.model_calls]])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
