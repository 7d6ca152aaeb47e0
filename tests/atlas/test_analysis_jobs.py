"""Analysis jobs end to end on a synthetic atlas with a known signal, written through the store into a real
SQLite file: clustering (UMAP + HDBSCAN) recovers each head's clusters, the map covers every pattern, the
predictors recover the signal head while shuffled labels and the `noise` control stay at chance, and
`predict_for_inference` places new patterns and predicts from them. UMAP compiles once per process, so
the clustering and the map run once in a module fixture (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Integer, cast, func, select

from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.atlas.prediction import as_vectors, predict_for_inference
from attnlens.atlas.train_predictors import predictor_parameters
from attnlens.config import Settings
from attnlens.contracts.jobs import ATLAS_CLUSTER, ATLAS_MAP, TRAIN_PREDICTORS
from attnlens.heads import HeadRef
from attnlens.service.jobs import run_job_here
from attnlens.store import Store, open_store, save_scenarios
from attnlens.store.jobs import enqueue_job, get_job
from attnlens.store.models import Cluster, ClusterAssignment, MapPoint, Predictor, PredictorEvaluation
from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference
from tests.store.fake_atlas import FakeScenario

pytestmark = pytest.mark.slow

MODEL = "synthetic"
HEADS = tuple(HeadRef(layer, head) for layer in range(3) for head in range(2))
SIGNAL = HeadRef(1, 0)  # its cluster decides the odds of correctness in `identifiers`
ROWS = {"identifiers": 160, "noise": 160, "eol": 6}  # eol: too few rows for 4-fold CV
DIM = 16
ATTNLENS = Path(sys.executable).with_name("attnlens")
ANALYSIS = {
    "umap_neighbors": 10,
    "hdbscan_min_samples": 5,
    "hdbscan_min_cluster_size": 15,
    "predictor_iterations": 200,
    "cv_folds": 4,
    "bootstrap_resamples": 200,
    "map_fit_sample": 1000,  # the other 956 points are placed by transform
}


@dataclass
class SyntheticAtlas:
    settings: Settings
    store: Store
    centres: np.ndarray  # (head, 3, dim): each head's three pattern directions
    truth: dict[int, int]  # head pattern id -> true cluster (0..2) within its head


def synthetic_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, model={"name": MODEL}, analysis=ANALYSIS)


def write_synthetic_atlas(settings: Settings, seed: int = 0) -> SyntheticAtlas:
    """Every head has three clusters of directions (what cosine UMAP sees). In `identifiers`, a row is
    correct with p 0.9 when SIGNAL is in cluster 0 and 0.1 otherwise; `noise` rows have no signal."""
    rng = np.random.default_rng(seed)
    store = open_store(settings)
    centres = rng.normal(size=(len(HEADS), 3, DIM)).astype(np.float32)
    truth: dict[int, int] = {}
    signal_column = HEADS.index(SIGNAL)
    with store.session() as session:
        for task, n in ROWS.items():
            scenarios = [
                FakeScenario("synthetic", f"{task}/F{i}.java", sha256(f"{task}{i}".encode()).hexdigest(),
                             task, task, 0, 1, "x", [5], [1, 2])
                for i in range(n)
            ]  # fmt: skip
            for i, scenario_id in enumerate(save_scenarios(session, scenarios, model_name=MODEL)):
                members = rng.integers(0, 3, size=len(HEADS))
                if task == "identifiers":
                    correct = bool(rng.random() < (0.9 if members[signal_column] == 0 else 0.1))
                else:
                    correct = bool(i % 2)
                inference_id = save_inference(
                    session,
                    model_name=MODEL,
                    scenario_id=scenario_id,
                    first_token_correct=correct,
                    embedder="synthetic-apmae",
                )
                vectors = centres[np.arange(len(HEADS)), members] + rng.normal(
                    0, 0.15, size=(len(HEADS), DIM)
                )
                stats = {name: np.zeros(len(HEADS)) for name in STAT_COLUMNS}
                thumbnails = np.zeros((len(HEADS), 4, 4), dtype=np.uint8)
                ids = save_head_patterns(session, inference_id, HEADS, vectors, thumbnails, stats)
                truth.update(zip(ids, members.tolist(), strict=True))
    return SyntheticAtlas(settings, store, centres, truth)


def run_kind(atlas: SyntheticAtlas, kind: str, parameters: dict):
    job_id = enqueue_job(atlas.store, kind, parameters)
    return run_job_here(atlas.settings, atlas.store, job_id, None, JOB_HANDLERS[kind])


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory):
    atlas = write_synthetic_atlas(synthetic_settings(tmp_path_factory.mktemp("synthetic") / "data"))
    # The clustering runs as users run it (the CLI in a subprocess), the rest in this process.
    done = subprocess.run(
        [str(ATTNLENS), "atlas", "cluster"], capture_output=True, text=True, timeout=600, env=cli_env(atlas)
    )
    assert done.returncode == 0, done.stderr
    jobs = {
        ATLAS_CLUSTER: get_job(atlas.store, json.loads(done.stdout)["job"]),
        ATLAS_MAP: run_kind(atlas, ATLAS_MAP, {"model": MODEL}),
        TRAIN_PREDICTORS: run_kind(atlas, TRAIN_PREDICTORS, predictor_parameters(None, MODEL)),
    }
    return atlas, jobs


def test_clustering_recovers_each_heads_clusters(analysed):
    from sklearn.metrics import adjusted_rand_score

    atlas, jobs = analysed
    job = jobs[ATLAS_CLUSTER]
    assert job.state == "succeeded", job.error
    assert job.result["heads"] == len(HEADS) and job.result["heads_all_noise"] == {}
    clustering_id = job.result["clustering_id"]
    n_patterns = len(HEADS) * sum(ROWS.values())
    with atlas.store.session() as session:
        rows = session.execute(
            select(ClusterAssignment.head_pattern_id, ClusterAssignment.label).where(
                ClusterAssignment.clustering_id == clustering_id
            )
        ).all()
        clusters = session.scalars(select(Cluster).where(Cluster.clustering_id == clustering_id)).all()
    assert len(rows) == n_patterns
    labels = dict(rows)
    for column, ref in enumerate(HEADS):
        ids = [pid for pid in labels if (pid - 1) % len(HEADS) == column]  # ids are written head by head
        assert adjusted_rand_score([atlas.truth[i] for i in ids], [labels[i] for i in ids]) > 0.95, ref.name
        head_clusters = [c for c in clusters if (c.layer, c.head) == (ref.layer, ref.head)]
        assert sum(c.size for c in head_clusters) == sum(ROWS.values())
        assert sum(1 for c in head_clusters if c.label >= 0) == 3
        for cluster in head_clusters:
            assert sum(cluster.attributes["task"].values()) == cluster.size
            if cluster.label >= 0:
                assert labels[cluster.medoid_head_pattern_id] == cluster.label


def test_map_places_every_pattern_once(analysed):
    atlas, jobs = analysed
    job = jobs[ATLAS_MAP]
    assert job.state == "succeeded", job.error
    n_patterns = len(HEADS) * sum(ROWS.values())
    assert job.result["points"] == n_patterns
    with atlas.store.session() as session:
        count, fitted = session.execute(
            select(func.count(), func.sum(cast(MapPoint.fitted, Integer))).where(
                MapPoint.pattern_map_id == job.result["map_id"]
            )
        ).one()
    assert count == n_patterns
    assert fitted == 1000


def _evaluations(atlas: SyntheticAtlas, task: str) -> dict[str, PredictorEvaluation]:
    with atlas.store.session() as session:
        rows = session.execute(
            select(Predictor.kind, PredictorEvaluation)
            .join(PredictorEvaluation, PredictorEvaluation.predictor_id == Predictor.id)
            .where(Predictor.task == task)
        ).all()
    return dict(rows)


def test_predictors_recover_the_signal_head(analysed):
    atlas, jobs = analysed
    assert jobs[TRAIN_PREDICTORS].state == "succeeded", jobs[TRAIN_PREDICTORS].error
    evaluations = _evaluations(atlas, "identifiers")
    assert set(evaluations) == {"clusters_catboost", "embeddings_pca_logreg"}
    for kind, evaluation in evaluations.items():
        assert evaluation.n_rows == ROWS["identifiers"]
        assert evaluation.accuracy_low > 0.75, kind  # best possible is about 0.9
        details = evaluation.details
        assert details["head_importance"][0]["name"] == SIGNAL.name, kind
        assert len(details["head_importance"]) == len(HEADS)
        control = details["shuffled_control"]["accuracy"]
        assert (
            control["low"] <= details["chance"] <= control["high"] or control["high"] < details["chance"]
        ), kind


def test_noise_control_sits_at_chance_and_small_tasks_are_skipped(analysed):
    atlas, jobs = analysed
    result = jobs[TRAIN_PREDICTORS].result
    assert "correct" in result["skipped"]["eol"]  # the InsufficientData message names the classes
    assert {(t["task"], t["kind"]) for t in result["trained"]} == {
        (task, kind)
        for task in ("identifiers", "noise")
        for kind in ("clusters_catboost", "embeddings_pca_logreg")
    }
    for kind, evaluation in _evaluations(atlas, "noise").items():
        assert evaluation.details["chance"] == 0.5
        assert evaluation.accuracy_low < 0.5, kind


def _predict(settings: Settings, store: Store, by_name: dict[str, np.ndarray], task: str):
    return predict_for_inference(settings, store, settings.model.name, as_vectors(by_name), task)


def test_predict_for_inference_follows_the_signal_head(analysed):
    atlas, _ = analysed
    rng = np.random.default_rng(1)
    background = {ref.name: atlas.centres[i, rng.integers(0, 3)] for i, ref in enumerate(HEADS)}
    column = HEADS.index(SIGNAL)
    likely, reason, placed = _predict(
        atlas.settings, atlas.store, {**background, SIGNAL.name: atlas.centres[column, 0]}, "identifiers"
    )
    assert reason is None
    unlikely, _, placed_unlikely = _predict(
        atlas.settings, atlas.store, {**background, SIGNAL.name: atlas.centres[column, 2]}, "identifiers"
    )
    assert likely.probability_correct > 0.7 > 0.3 > unlikely.probability_correct
    assert likely.top_heads[0].name == SIGNAL.name
    assert likely.top_heads[0].importance > 0 > unlikely.top_heads[0].importance
    assert set(placed.clusters) == {ref.name for ref in HEADS}
    assert placed.clusters[SIGNAL.name] != placed_unlikely.clusters[SIGNAL.name]
    # Each top head carries the cluster its pattern joined.
    assert likely.top_heads[0].cluster == placed.clusters[SIGNAL.name]
    predictor = likely.predictor
    assert (
        predictor.task == "identifiers"
        and predictor.accuracy_low <= predictor.accuracy <= predictor.accuracy_high
    )


def test_predict_for_inference_says_why_it_cannot(analysed, tmp_path: Path):
    atlas, _ = analysed
    vectors = {ref.name: atlas.centres[i, 0] for i, ref in enumerate(HEADS)}
    prediction, reason, placed = _predict(atlas.settings, atlas.store, vectors, "eol")
    assert prediction is None and "attnlens predictors train" in reason
    # Without a predictor for the task the heads are still placed in the clustering.
    assert placed.clustering_id is not None and set(placed.clusters) == {ref.name for ref in HEADS}
    empty = synthetic_settings(tmp_path / "empty")
    prediction, reason, placed = _predict(empty, open_store(empty), vectors, "identifiers")
    assert prediction is None and "attnlens predictors train" in reason
    assert placed.clustering_id is None and placed.clusters == {}


def test_clustering_needs_an_atlas(tmp_path: Path):
    settings = synthetic_settings(tmp_path / "data")
    store = open_store(settings)
    job = run_job_here_failing(settings, store, ATLAS_CLUSTER)
    assert job.state == "failed" and "attnlens atlas build" in job.error
    job = run_job_here_failing(settings, store, TRAIN_PREDICTORS)
    assert job.state == "failed" and "attnlens atlas cluster" in job.error


def run_job_here_failing(settings: Settings, store: Store, kind: str):
    from attnlens.errors import InsufficientData
    from attnlens.store.jobs import get_job

    job_id = enqueue_job(store, kind, {"model": MODEL})
    with pytest.raises(InsufficientData):
        run_job_here(settings, store, job_id, None, JOB_HANDLERS[kind])
    return get_job(store, job_id)


def cli_env(atlas: SyntheticAtlas) -> dict[str, str]:
    env = {**os.environ, "ATTNLENS_DATA_DIR": str(atlas.settings.data_dir), "ATTNLENS_MODEL__NAME": MODEL}
    env.update({f"ATTNLENS_ANALYSIS__{k.upper()}": str(v) for k, v in ANALYSIS.items()})
    return env


def test_cli_trains_and_reports(analysed):
    atlas, _ = analysed
    env = cli_env(atlas)
    done = subprocess.run(
        [str(ATTNLENS), "predictors", "train", "--tasks", "identifiers"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert result["state"] == "succeeded" and [t["task"] for t in result["trained"]] == ["identifiers"] * 2
    done = subprocess.run(
        [str(ATTNLENS), "predictors", "report"], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    lines = {
        tuple(line.split()[:2]): line
        for line in done.stdout.splitlines()
        if line.startswith(("identifiers", "noise"))
    }
    assert set(lines) == {
        (t, k) for t in ("identifiers", "noise") for k in ("clusters_catboost", "embeddings_pca_logreg")
    }
    assert " 160 " in lines[("identifiers", "clusters_catboost")]


@pytest.mark.parametrize("kind", ["clusters_catboost", "embeddings_pca_logreg"])
def test_experiment_ranking_over_its_own_rows_picks_the_signal_head_first(analysed, kind):
    """The experiment's rules rank heads by each trained predictor's SHAP over the rows it acts on (new
    rows, as held-out scenarios are): the head that drives correctness is first for both directed rules.
    The first version ranked by the stored signed mean over the training rows (about 0 for every head)."""
    from attnlens.analysis import HeadRanking, select_heads
    from attnlens.atlas.prediction import explain_rows

    atlas, _ = analysed
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(120):
        picks = rng.integers(0, 3, size=len(HEADS))
        vectors = atlas.centres[np.arange(len(HEADS)), picks] + rng.normal(0, 0.15, size=(len(HEADS), DIM))
        rows.append(dict(zip(HEADS, vectors.astype(np.float32), strict=True)))
    explained = explain_rows(atlas.settings, atlas.store, MODEL, "identifiers", rows, kind)
    assert (
        explained is not None and explained.info.kind == kind and explained.values.shape == (120, len(HEADS))
    )
    ranking = HeadRanking.from_shap(explained.heads, explained.values)
    for rule in ("top_positive", "top_negative"):
        assert select_heads(ranking, rule, 2, eps=1e-5, seed=0).heads[0] == SIGNAL, (kind, rule)
    assert explain_rows(atlas.settings, atlas.store, MODEL, "eol", rows, kind) is None  # no eol predictor


def test_clustering_stores_how_often_the_knn_vote_agrees_with_its_labels(analysed):
    """Pasted code is placed in clusters by a kNN vote, not by HDBSCAN: the clustering job holds out a
    seeded 20% of each head's labelled rows, votes their labels from the other 80% and stores the agreement
    with a Wilson interval, per head and overall (well-separated synthetic clusters: nearly always)."""
    from attnlens.store.analyses import clustering_by_id

    atlas, jobs = analysed
    job = jobs[ATLAS_CLUSTER]
    clustering = clustering_by_id(atlas.store, job.result["clustering_id"])
    assert clustering is not None
    knn = clustering.parameters["knn_agreement"]
    held = round(0.2 * sum(ROWS.values()))
    assert set(knn["per_head"]) == {ref.name for ref in HEADS}
    for name, head in knn["per_head"].items():
        assert head["held_out"] == held and head["low"] <= head["rate"] <= head["high"], name
        assert head["rate"] == round(head["agree"] / held, 4)
    overall = knn["overall"]
    assert overall["held_out"] == held * len(HEADS)
    assert overall["agree"] == sum(h["agree"] for h in knn["per_head"].values())
    assert overall["low"] <= overall["rate"] <= overall["high"] and overall["rate"] > 0.95
    assert knn["clustered_heads"]["heads"] == len(HEADS)
    assert job.result["knn_agreement"]["overall"] == overall  # the job's result says it too


def test_prediction_says_whether_its_measured_accuracy_applies(analysed):
    """Predictors record their rows' window length; a prediction's accuracy applies only to an input of
    that length embedded by the same checkpoint, and the prediction says why (or why not)."""
    atlas, _ = analysed
    with atlas.store.session() as session:
        windows = list(session.scalars(select(Predictor.parameters)).all())
    vectors = as_vectors({ref.name: atlas.centres[i, 0] for i, ref in enumerate(HEADS)})
    assert windows and all(parameters["window_tokens"] == 16 for parameters in windows)  # FakeScenario's

    def predict(prompt_tokens, embedder):
        prediction, reason, _ = predict_for_inference(
            atlas.settings, atlas.store, MODEL, vectors, "identifiers",
            prompt_tokens=prompt_tokens, embedder=embedder,
        )  # fmt: skip
        assert prediction is not None, reason
        return prediction

    full = predict(16, "synthetic-apmae")
    assert full.applies and full.prompt_tokens == 16
    assert full.applicability.startswith("measured on windows like this one (16 tokens")
    short = predict(9, "synthetic-apmae")
    assert not short.applies and short.prompt_tokens == 9
    assert "measured on 16-token atlas windows; this paste's prompt is 9 tokens" in short.applicability
    assert 0.0 < short.probability_correct < 1.0  # still what the model says
    other = predict(16, "another-apmae")
    assert not other.applies and "not of the worker's another-apmae" in other.applicability


def test_not_yet_is_not_an_error_the_reason_names_the_queued_job(tmp_path: Path):
    """Before predictors or a clustering exist, a prediction's reason names the job that is already queued
    or running to make them (the demo chain queues them), instead of telling the user to run a command
    that is already on its way; with nothing queued it names the command."""
    settings = synthetic_settings(tmp_path / "data")
    store = open_store(settings)
    vectors = {ref.name: np.zeros(DIM, np.float32) for ref in HEADS}
    _, reason, _ = _predict(settings, store, vectors, "identifiers")
    assert "run `attnlens predictors train`" in reason
    build = enqueue_job(store, "atlas_build", {})
    train = enqueue_job(store, TRAIN_PREDICTORS, {})
    _, reason, _ = _predict(settings, store, vectors, "identifiers")
    assert f"job {train} (train_predictors) is queued, after 1 job(s) ahead of it" in reason
    assert "run `" not in reason and build < train


@pytest.mark.parametrize("kind", ["clusters_catboost", "embeddings_pca_logreg"])
def test_ablating_the_heads_a_rule_picks_moves_accuracy_more_than_random(analysed, kind, tmp_path):
    """End to end on a real model: a task whose correctness the signal head decides (each scenario's target
    is the tiny StarCoder2's greedy token with that head ablated, kept where that differs from its
    unablated token), heads ranked by the trained predictor's SHAP over the rows acted on, and the
    experiment's own correctness measure under ablation: the rule's heads move accuracy from 0 to 1,
    random heads far less."""
    from dataclasses import dataclass as frozen

    from attnlens.analysis import HeadRanking, ablation_statistics, select_heads
    from attnlens.atlas.held_out import first_token_correct
    from attnlens.atlas.prediction import explain_rows
    from attnlens.model import TargetModel

    atlas, _ = analysed
    model = TargetModel.load("tiny-starcoder2", models_dir=tmp_path, device="cpu", dtype="float32")

    @frozen(frozen=True)
    class Hole:  # what `first_token_correct` reads of a scenario
        prompt_ids: list[int]
        target_ids: list[int]

    rng = np.random.default_rng(11)
    prompts = [rng.integers(5, 1024, size=24).tolist() for _ in range(240)]
    plain = model.next_token_logits_batch(prompts).argmax(-1)
    ablated = model.next_token_logits_batch(prompts, ablate=[SIGNAL]).argmax(-1)
    holes = [Hole(p, [int(b)]) for p, a, b in zip(prompts, plain, ablated, strict=True) if a != b]
    assert len(holes) >= 20, len(holes)

    rows = []
    for _ in range(120):
        picks = rng.integers(0, 3, size=len(HEADS))
        vectors = atlas.centres[np.arange(len(HEADS)), picks] + rng.normal(0, 0.15, size=(len(HEADS), DIM))
        rows.append(dict(zip(HEADS, vectors.astype(np.float32), strict=True)))
    explained = explain_rows(atlas.settings, atlas.store, MODEL, "identifiers", rows, kind)
    ranking = HeadRanking.from_shap(explained.heads, explained.values)
    chosen = select_heads(ranking, "top_positive", 1, eps=1e-5, seed=0).heads
    assert chosen == (SIGNAL,)

    baseline = first_token_correct(model, holes)
    assert baseline.mean() == 0.0
    directed = ablation_statistics(baseline, first_token_correct(model, holes, chosen), resamples=200, seed=0)
    assert directed.ablated_accuracy.estimate == 1.0
    randoms = []
    for seed in range(6):
        heads = select_heads(ranking, "random", 1, eps=1e-5, seed=seed).heads
        randoms.append(first_token_correct(model, holes, heads).mean())
    assert np.mean(randoms) < directed.accuracy_change.low
