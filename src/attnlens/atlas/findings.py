"""The `findings_report` job: the paper's five claims measured on one model's atlas (`contracts.findings`).

- (i) reconstruction: `apmae.workflow.evaluate_checkpoint` on the checkpoint's test split (files neither
  its training nor its best-step selection saw), against the mean-image and mean-of-visible baselines;
- (ii) generalisation: needs a second model's patterns; says so while the atlas holds one;
- (iii) recurrence: clusters per head in the newest finished clustering, the share of clusters whose
  members come from several tasks, and stability: on a seeded sample of heads, the head's rows are split
  into two halves, each half clustered with the same recipe, every row labelled by each half's clusters
  (the kNN vote the app uses for new patterns), and the two labellings compared by adjusted Rand index
  (1: the same partition; about 0: no better than chance);
- (iv) correctness: the newest predictors' stored evaluations with their baselines
  (`atlas.predictor_baselines`);
- (v) dose: the newest succeeded ablation experiment of the model (or the one asked for).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from attnlens.atlas.clustering import model_of
from attnlens.atlas.jobs import JobContext
from attnlens.config import Settings
from attnlens.contracts.findings import (
    CorrectnessFinding,
    DoseFinding,
    DosePoint,
    Estimate,
    Findings,
    GeneralisationFinding,
    HeadStability,
    LayerReconstruction,
    ReconstructionFinding,
    RecurrenceFinding,
    Spread,
    TaskCorrectness,
)
from attnlens.contracts.jobs import ABLATION_EXPERIMENT
from attnlens.errors import AttnLensError
from attnlens.heads import HeadRef
from attnlens.store import Store
from attnlens.store.analyses import (
    PredictorRow,
    clustered_heads,
    clustering_clusters,
    latest_clustering,
    newest_predictors,
    succeeded_jobs,
)
from attnlens.store.analysis_rows import Selection, load_head_rows
from attnlens.store.inferences import atlas_models, task_counts

T = TypeVar("T")
TASK_SHARE = 0.1  # a task "contributes" to a cluster when at least this share of its members is from it
STABILITY_HEADS = 27  # heads sampled for the two-halves stability (each costs two clusterings)


def spread(values: list[float] | np.ndarray) -> Spread | None:
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return None
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return Spread(len(v), float(median), float(q1), float(q3), float(v.min()), float(v.max()))


def _estimate(point: float, interval: list[float] | None) -> Estimate:
    low, high = interval if interval else (point, point)
    return Estimate(float(point), float(low), float(high))


def reconstruction_finding(settings: Settings, checkpoint: str, enabled: bool) -> ReconstructionFinding:
    """Claim (i) from a fresh evaluation of `checkpoint` on its test split."""
    if not enabled:
        return ReconstructionFinding(
            reason="not measured in this run (reconstruction was switched off); run `attnlens report` "
            "without --no-reconstruction, or `attnlens eval-apmae --checkpoint default`."
        )
    from attnlens.apmae.workflow import evaluate_checkpoint
    from attnlens.model import TargetModel

    def load_target(name: str) -> TargetModel:
        return TargetModel.load(
            name, models_dir=settings.models_dir, device=settings.model.device, dtype=settings.model.dtype
        )

    try:
        report = evaluate_checkpoint(
            checkpoint, cache_dir=None, png=None, device=settings.apmae.device, split="test",
            data_dir=settings.data_dir, load_target=load_target,
            bootstrap=settings.analysis.bootstrap_resamples, progress=False,
            models_dir=settings.models_dir, allow_pickle_weights=settings.apmae.allow_pickle_weights,
        )  # fmt: skip
    except AttnLensError as exc:
        return ReconstructionFinding(reason=f"the evaluation of {checkpoint!r} failed: {exc.message}")
    mse: dict[str, float] = report["masked_patch_mse"]  # type: ignore[assignment]
    intervals: dict[str, Any] = report.get("intervals") or {}  # type: ignore[assignment]
    overall = intervals.get("overall", {})
    per_layer: dict[str, dict[str, float]] = report["per_layer"]  # type: ignore[assignment]
    test_set: dict[str, Any] = report.get("test_set") or {}  # type: ignore[assignment]
    return ReconstructionFinding(
        checkpoint=str(report.get("checkpoint", checkpoint)),
        split=str(report.get("split", "test")),
        patterns=int(report["patterns"]),  # type: ignore[call-overload]
        windows=int(test_set["windows"]) if "windows" in test_set else None,
        model=_estimate(mse["model"], overall.get("model")),
        mean_image=_estimate(mse["mean_image"], overall.get("mean_image")),
        mean_visible=_estimate(mse["mean_visible"], overall.get("mean_visible")),
        per_layer=[
            LayerReconstruction(int(layer), v["model"], v["mean_image"], v["mean_visible"])
            for layer, v in sorted(per_layer.items(), key=lambda kv: int(kv[0]))
        ],
    )


def generalisation_finding(data_dir: Path, models: list[str]) -> GeneralisationFinding:
    """The transfer matrix that `attnlens eval-apmae --model` records in this data folder (each cell a
    checkpoint scored on one model's held-out patterns), or why there is none."""
    from attnlens.apmae.transfer import read_transfer_matrix, transfer_table

    matrix = read_transfer_matrix(data_dir)
    if not matrix.checkpoints:
        return GeneralisationFinding(
            models=models,
            reason="no AP-MAE checkpoint has been scored on a model's held-out patterns in this data folder; "
            "run attnlens eval-apmae --checkpoint C --model M for the models of the atlas "
            f"({', '.join(models) or 'none'}), the one C was trained on and another.",
        )
    header, rows = transfer_table(matrix)
    return GeneralisationFinding(models=models, header=header, rows=rows)


def recurrence_finding(
    settings: Settings, store: Store, model_name: str, stability_heads: int
) -> RecurrenceFinding:
    """Claim (iii) on the newest finished clustering of `model_name`."""
    clustering = latest_clustering(store, model_name)
    if clustering is None:
        return RecurrenceFinding(
            reason=f"{model_name} has no finished clustering; run `attnlens atlas cluster`."
        )
    with store.session() as session:
        clusters = clustering_clusters(session, clustering.id)
        heads = clustered_heads(session, clustering.id)
    per_head: dict[tuple[int, int], int] = {(h.layer, h.head): 0 for h in heads}
    noise = total = across = real = 0
    for c in clusters:
        total += c.size
        if c.label < 0:
            noise += c.size
            continue
        real += 1
        per_head[(c.layer, c.head)] += 1
        tasks = (c.attributes or {}).get("task", {})
        size = max(sum(tasks.values()), 1)
        if sum(1 for n in tasks.values() if n / size >= TASK_SHARE) >= 2:
            across += 1
    stability, stability_reason = _stability(
        settings, store, model_name, clustering.embedder, heads, stability_heads
    )
    usable = [s.adjusted_rand for s in stability if s.clusters_first_half or s.clusters_second_half]
    return RecurrenceFinding(
        clustering_id=clustering.id,
        heads=len(heads),
        patterns=total,
        clusters_per_head=spread(list(per_head.values())),
        noise_fraction=noise / total if total else None,
        heads_without_clusters=sum(1 for n in per_head.values() if n == 0),
        clusters=real,
        clusters_across_tasks=across,
        task_share=TASK_SHARE,
        stability=stability,
        stability_spread=spread(usable),
        stability_reason=stability_reason,
    )


def _stability(
    settings: Settings, store: Store, model_name: str, embedder: str | None, heads: list[HeadRef], count: int
) -> tuple[list[HeadStability], str | None]:
    from sklearn.metrics import adjusted_rand_score

    from attnlens.analysis import ClusterAssigner, cluster_head

    if count <= 0:
        return [], "not measured in this run (no heads sampled)."
    rng = np.random.default_rng(settings.analysis.seed)
    chosen = sorted(rng.choice(len(heads), size=min(count, len(heads)), replace=False).tolist())
    selection = Selection(model_name, embedder)
    out: list[HeadStability] = []
    for j in chosen:
        head = heads[j]
        with store.session() as session:
            rows = load_head_rows(session, selection, head)
        order = rng.permutation(len(rows.embeddings))
        halves = (order[: len(order) // 2], order[len(order) // 2 :])
        labellings, found = [], []
        for half in halves:
            fit = cluster_head(rows.embeddings[half], settings.analysis, head=head)
            found.append(fit.n_clusters)
            assigner = ClusterAssigner(rows.embeddings[half], fit.labels, settings.analysis.knn_k)
            labellings.append(assigner.assign(rows.embeddings).labels)
        out.append(HeadStability(head.name, float(adjusted_rand_score(*labellings)), found[0], found[1]))
    skipped = sum(1 for s in out if not (s.clusters_first_half or s.clusters_second_half))
    reason = (
        f"{skipped} of {len(out)} sampled heads found no cluster in either half (all noise: agreement would "
        "be trivial) and are left out of the spread."
        if skipped
        else None
    )
    return out, reason


def _from(entry: dict[str, Any] | None, key: str = "accuracy") -> Estimate | None:
    if not entry or key not in entry:
        return None
    value = entry[key]
    return Estimate(value["estimate"], value["low"], value["high"])


def task_correctness(row: PredictorRow) -> TaskCorrectness:
    """One predictor's stored evaluation and baselines as a report row (None where it stored none)."""
    evaluation, details = row.evaluation, row.evaluation.details or {}
    control = (details.get("shuffled_control") or {}).get("accuracy")
    baselines = details.get("baselines") or {}
    stratified = baselines.get("stratified") or {}
    balanced = baselines.get("balanced") or {}
    exact = baselines.get("exact_holes") or {}
    notes = [
        text
        for text in (stratified.get("confidence_missing"), balanced.get("reason"), exact.get("reason"))
        if text
    ]
    if not baselines:
        notes.append("trained before baselines were stored; train predictors again.")
    exact_attention = exact.get("attention") or {}
    return TaskCorrectness(
        task=row.predictor.task or "all",
        kind=row.predictor.kind,
        predictor_id=row.predictor.id,
        n_rows=evaluation.n_rows,
        chance=details.get("chance"),
        accuracy=Estimate(evaluation.accuracy, evaluation.accuracy_low, evaluation.accuracy_high),
        shuffled=None if control is None else Estimate(control["estimate"], control["low"], control["high"]),
        confidence=_from(stratified.get("confidence")),
        combined=_from(stratified.get("attention_plus_confidence")),
        gain=_from(stratified, "accuracy_gain"),
        balanced_per_class=balanced.get("per_class"),
        balanced_accuracy=_from(balanced.get("attention")),
        balanced_confidence=_from(balanced.get("confidence")),
        exact_rows=exact_attention.get("n_rows"),
        exact_chance=exact_attention.get("chance"),
        exact_accuracy=_from(exact_attention),
        note=" ".join(notes) or None,
    )


def correctness_finding(store: Store, model_name: str) -> CorrectnessFinding:
    """Claim (iv) from the newest predictor of each (task, kind) and its stored baselines."""
    rows = [task_correctness(row) for row in newest_predictors(store, model_name)]
    if not rows:
        return CorrectnessFinding(
            reason=f"{model_name} has no trained predictors; run `attnlens predictors train`."
        )
    return CorrectnessFinding(rows=rows)


def dose_finding(store: Store, model_name: str, experiment_id: int | None) -> DoseFinding:
    """Claim (v) from the newest succeeded ablation experiment on `model_name` (or `experiment_id`)."""
    for job in succeeded_jobs(store, ABLATION_EXPERIMENT, limit=200):
        result = job.result or {}
        if (experiment_id is not None and job.id != experiment_id) or result.get(
            "model", model_name
        ) != model_name:
            continue
        points = [
            DosePoint(
                rule=r["rule"], n=int(r["n"]), n_heads=int(r["n_heads"]),
                accuracy=Estimate(r["accuracy"], r["accuracy_low"], r["accuracy_high"]),
                change=Estimate(r["change"], r["change_low"], r["change_high"]),
                incorrect_to_correct=Estimate(r["i2c"], r["i2c_low"], r["i2c_high"]),
                correct_to_incorrect=Estimate(r["c2i"], r["c2i_low"], r["c2i_high"]),
            )
            for r in result.get("rows", [])
        ]  # fmt: skip
        return DoseFinding(
            experiment_id=job.id, task=result.get("task"), scenarios=result.get("scenarios"),
            balanced=result.get("balanced"), baseline_accuracy=result.get("baseline_accuracy"),
            ranked_by=result.get("ranked_by"), points=points,
        )  # fmt: skip
    if experiment_id is not None:
        return DoseFinding(
            reason=f"job {experiment_id} is not a succeeded ablation experiment on {model_name}; pick one "
            "from `attnlens experiments list`."
        )
    return DoseFinding(
        reason=f"no ablation experiment on {model_name} has succeeded; run `attnlens experiments run --task "
        "identifiers --balanced ...` (or start one on the Experiments page)."
    )


def _timed(seconds: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    try:
        return fn()
    finally:
        seconds[name] = round(time.perf_counter() - start, 2)


def run_findings_report(ctx: JobContext) -> dict[str, Any]:
    """Measure the five claims on one model's atlas; the result is `asdict(Findings)`."""
    p = ctx.job.parameters
    model_name = model_of(ctx)
    settings, store = ctx.settings, ctx.store
    checkpoint = str(p.get("checkpoint") or "default")
    reconstruct = bool(p.get("reconstruction", True))
    heads = int(p.get("stability_heads", STABILITY_HEADS))
    seconds: dict[str, float] = {}
    ctx.progress(
        0, 5, "reconstruction (AP-MAE on its test split)" if reconstruct else "reconstruction: skipped"
    )
    reconstruction = _timed(
        seconds, "reconstruction", lambda: reconstruction_finding(settings, checkpoint, reconstruct)
    )
    with store.session() as session:
        models = atlas_models(session)
        counts = {
            t: c.inferences for t, c in sorted(task_counts(session, model_name).items()) if c.inferences
        }
    generalisation = generalisation_finding(settings.data_dir, models)
    ctx.progress(1, 5, f"recurrence: clusters and stability over {heads} sampled heads")
    recurrence = _timed(seconds, "recurrence", lambda: recurrence_finding(settings, store, model_name, heads))
    ctx.progress(3, 5, "correctness predictors")
    correctness = _timed(seconds, "correctness", lambda: correctness_finding(store, model_name))
    ctx.progress(4, 5, "dose curve")
    experiment = p.get("experiment_id")
    dose = _timed(
        seconds,
        "dose",
        lambda: dose_finding(store, model_name, None if experiment is None else int(experiment)),
    )
    ctx.progress(5, 5, "report ready")
    command = (
        "attnlens report" + ("" if reconstruct else " --no-reconstruction") + f" --stability-heads {heads}"
    )
    findings = Findings(
        model=model_name,
        embedder=recurrence_embedder(store, model_name),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        command=command,
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        inferences_per_task=counts,
        reconstruction=reconstruction,
        generalisation=generalisation,
        recurrence=recurrence,
        correctness=correctness,
        dose=dose,
        seconds=seconds,
    )
    return asdict(findings)


def recurrence_embedder(store: Store, model_name: str) -> str | None:
    clustering = latest_clustering(store, model_name)
    return None if clustering is None else clustering.embedder
