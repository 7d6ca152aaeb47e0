"""Time the analysis jobs and their request paths on a synthetic atlas of SmolLM2's shape.

    .venv/bin/python benchmarks/bench_analysis_jobs.py --inferences 300 --layers 30 --heads 9 --dim 128

Writes a synthetic atlas (every head has 3 pattern directions; in task `identifiers` one head decides the
odds of correctness) into a temporary SQLite file through the store, then times: the `atlas_cluster` job
(per head), the `atlas_map` job, the `train_predictors` job, `predict_for_inference` cold (assigners built
from the database) and warm, and GET /api/maps/latest. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Scenario:
    corpus: str
    file_path: str
    file_sha256: str
    task: str
    node_type: str
    hole_start: int = 0
    hole_end: int = 1
    target_text: str = "x"
    target_ids: tuple[int, ...] = (5,)
    prompt_ids: tuple[int, ...] = (1, 2)
    mode: str = "l2r"
    context_tokens: int = 256
    n_prefix_tokens: int = 256
    n_suffix_tokens: int = 0
    seed: int = 0
    alignment: str = "exact"


def write_atlas(settings, n_inferences: int, n_layers: int, n_heads: int, dim: int):
    from attnlens.heads import HeadRef
    from attnlens.store import open_store, save_scenarios
    from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference

    rng = np.random.default_rng(0)
    heads = [HeadRef(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    centres = rng.normal(size=(len(heads), 3, dim)).astype(np.float32)
    signal = len(heads) // 2
    store = open_store(settings)
    with store.session() as session:
        scenarios = [
            Scenario(
                "bench",
                f"F{i}.java",
                hashlib.sha256(str(i).encode()).hexdigest(),
                "identifiers",
                "identifier",
            )
            for i in range(n_inferences)
        ]
        for scenario_id in save_scenarios(session, scenarios, model_name=settings.model.name):
            members = rng.integers(0, 3, size=len(heads))
            correct = bool(rng.random() < (0.9 if members[signal] == 0 else 0.2))
            inference_id = save_inference(
                session,
                model_name=settings.model.name,
                scenario_id=scenario_id,
                first_token_correct=correct,
                embedder="bench",
            )
            vectors = centres[np.arange(len(heads)), members] + rng.normal(0, 0.15, size=(len(heads), dim))
            stats = {name: np.zeros(len(heads)) for name in STAT_COLUMNS}
            save_head_patterns(
                session, inference_id, heads, vectors, np.zeros((len(heads), 4, 4), np.uint8), stats
            )
    return store, heads, centres


def timed_job(settings, store, kind: str, parameters: dict) -> tuple[float, dict]:
    from attnlens.atlas.handlers import JOB_HANDLERS
    from attnlens.service.jobs import run_job_here
    from attnlens.store.jobs import enqueue_job

    start = time.perf_counter()
    job = run_job_here(settings, store, enqueue_job(store, kind, parameters), None, JOB_HANDLERS[kind])
    seconds = time.perf_counter() - start
    if job.state != "succeeded":
        raise SystemExit(f"{kind} failed: {job.error}")
    return seconds, job.result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inferences", type=int, default=300)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--heads", type=int, default=9)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--predict-calls", type=int, default=50)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from attnlens.api import create_app
    from attnlens.atlas.prediction import as_vectors, predict_for_inference
    from attnlens.config import Settings
    from attnlens.contracts.jobs import ATLAS_CLUSTER, ATLAS_MAP, TRAIN_PREDICTORS
    from attnlens.service.local import LocalWorker

    out: dict = {"inferences": args.inferences, "heads": args.layers * args.heads, "dim": args.dim}
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            data_dir=Path(folder), model={"name": "bench"}, analysis={"predictor_iterations": 300}
        )
        start = time.perf_counter()
        store, heads, centres = write_atlas(settings, args.inferences, args.layers, args.heads, args.dim)
        out["write_atlas_s"] = round(time.perf_counter() - start, 2)
        out["patterns"] = args.inferences * len(heads)
        seconds, result = timed_job(settings, store, ATLAS_CLUSTER, {})
        out["cluster_job_s"] = round(seconds, 1)
        out["cluster_job_per_head_s"] = round(seconds / len(heads), 3)
        out["clusters"] = result["clusters"]
        seconds, _ = timed_job(settings, store, ATLAS_MAP, {})
        out["map_job_s"] = round(seconds, 1)
        seconds, result = timed_job(settings, store, TRAIN_PREDICTORS, {"tasks": ["identifiers"]})
        out["train_predictors_job_s"] = round(seconds, 1)
        out["trained"] = result["trained"]

        rng = np.random.default_rng(1)

        def request() -> dict:
            picks = rng.integers(0, 3, size=len(heads))
            vectors = {
                ref.name: centres[i, picks[i]] + rng.normal(0, 0.15, args.dim) for i, ref in enumerate(heads)
            }
            return vectors

        start = time.perf_counter()
        prediction, reason, _ = predict_for_inference(
            settings, store, "bench", as_vectors(request()), "identifiers"
        )
        out["predict_cold_s"] = round(time.perf_counter() - start, 3)
        if prediction is None:
            raise SystemExit(reason)
        out["predict_kind"] = prediction.predictor.kind
        warm = []
        for _ in range(args.predict_calls):
            vectors = as_vectors(request())
            start = time.perf_counter()
            predict_for_inference(settings, store, "bench", vectors, "identifiers")
            warm.append(time.perf_counter() - start)
        out["predict_warm_median_s"] = round(statistics.median(warm), 4)
        out["predict_warm_max_s"] = round(max(warm), 4)

        client = TestClient(create_app(settings, LocalWorker(settings), store))
        for max_points in (out["patterns"], max(1, out["patterns"] // 10)):
            start = time.perf_counter()
            response = client.get("/api/maps/latest", params={"max_points": max_points})
            seconds = time.perf_counter() - start
            body = response.json()
            out[f"map_endpoint_max_points_{max_points}"] = {
                "s": round(seconds, 3),
                "shown": body["shown"],
                "bytes": len(response.content),
            }
        start = time.perf_counter()
        client.get(f"/api/heads/{heads[0].name}/clusters")
        out["clusters_endpoint_s"] = round(time.perf_counter() - start, 4)
    print(json.dumps(out, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
