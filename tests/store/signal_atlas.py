"""A predicted atlas for tests: a private copy of the tiny atlas plus `identifiers` rows whose correctness
one head's pattern decides, clustered and with both predictor kinds trained by the real jobs (UMAP,
CatBoost, logistic regression: nothing faked but the rows' embeddings)."""

from __future__ import annotations

import shutil
import sqlite3
from hashlib import sha256
from pathlib import Path

import numpy as np

from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.atlas.indexing import sync_index
from attnlens.atlas.train_predictors import predictor_parameters
from attnlens.config import Settings
from attnlens.contracts.jobs import ATLAS_CLUSTER, TRAIN_PREDICTORS
from attnlens.heads import HeadRef
from attnlens.service.jobs import run_job_here
from attnlens.service.local import LocalWorker
from attnlens.store import Store, open_store, save_scenarios
from attnlens.store.jobs import enqueue_job
from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference
from tests.store.fake_atlas import FakeScenario

HEADS = tuple(HeadRef(layer, head) for layer in range(4) for head in range(4))  # the tiny StarCoder2's
SIGNAL = HeadRef(2, 1)
DIM = 32  # the tiny AP-MAE's embedding width
ANALYSIS = {
    "umap_neighbors": 10,
    "hdbscan_min_samples": 5,
    "hdbscan_min_cluster_size": 15,
    "predictor_iterations": 200,
    "cv_folds": 4,
    "bootstrap_resamples": 200,
    # Pattern families small enough for a few hundred patterns.
    "family_fit_sample": 120,
    "family_min_cluster_size": 8,
    "family_examples": 4,
}
CODE = """public class Counter {
    private int count;

    public void increment() {
        count += 1;
    }

    public boolean isEmpty() {
        return count == 0;
    }
}
"""


def write_signal_rows(store, model_name: str, embedder: str, n: int = 160, seed: int = 0) -> None:
    """`identifiers` rows whose every head has three well-separated pattern directions; a row is right
    with p 0.9 when SIGNAL is in its first direction and 0.1 otherwise. The model's confidence at the
    hole is drawn independently of correctness, so attention adds over it; every fourth hole is widened."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(HEADS), 3, DIM)).astype(np.float32)
    column = HEADS.index(SIGNAL)
    with store.session() as session:
        scenarios = [
            FakeScenario("signal", f"S{i}.java", sha256(f"s{i}".encode()).hexdigest(), "identifiers",
                         "identifier", 0, 1, "x", [5], [1, 2],
                         alignment="exact" if i % 4 else "widened:left=1,right=0")
            for i in range(n)
        ]  # fmt: skip
        for scenario_id in save_scenarios(session, scenarios, model_name=model_name):
            members = rng.integers(0, 3, size=len(HEADS))
            correct = bool(rng.random() < (0.9 if members[column] == 0 else 0.1))
            top1 = float(rng.uniform(0.2, 1.0))
            confidence = (top1, top1 * float(rng.uniform(0, 1)), float(rng.uniform(0, 3)))
            inference_id = save_inference(
                session, model_name=model_name, scenario_id=scenario_id, first_token_correct=correct,
                embedder=embedder, confidence=confidence,
            )  # fmt: skip
            vectors = centres[np.arange(len(HEADS)), members] + rng.normal(0, 0.15, size=(len(HEADS), DIM))
            stats = {name: np.zeros(len(HEADS)) for name in STAT_COLUMNS}
            save_head_patterns(
                session, inference_id, HEADS, vectors, np.zeros((len(HEADS), 4, 4), np.uint8), stats
            )


def build_predicted_atlas(source_settings: Settings, data: Path) -> tuple[Settings, Store]:
    """Copy the tiny atlas at `source_settings` into `data`, add the signal rows, cluster, train, index."""
    data.mkdir(parents=True)
    with (
        sqlite3.connect(source_settings.data_dir / "attnlens.db") as a,
        sqlite3.connect(data / "attnlens.db") as b,
    ):
        a.backup(b)
    shutil.copytree(source_settings.index_dir, data / "index")
    settings = source_settings.model_copy(
        update={"data_dir": data, "analysis": source_settings.analysis.model_copy(update=ANALYSIS)}
    )
    store = open_store(settings)
    write_signal_rows(store, settings.model.name, LocalWorker(settings).embedder_name)
    for kind, parameters in (
        (ATLAS_CLUSTER, {}),
        (TRAIN_PREDICTORS, predictor_parameters(["identifiers"], None)),
    ):
        job = run_job_here(settings, store, enqueue_job(store, kind, parameters), None, JOB_HANDLERS[kind])
        if job.state != "succeeded":
            raise RuntimeError(f"{kind} failed on the predicted atlas: {job.error}")
    sync_index(settings, store)
    return settings, store
