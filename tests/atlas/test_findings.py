"""The findings report job on a predicted atlas (real clustering and trained predictors,
tests/store/signal_atlas.py): every section is gathered from what the atlas holds, stability is measured by
really clustering two halves, absent sections say why, and both renderings carry the same figures."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from pydantic import TypeAdapter

from attnlens.atlas.findings_render import ci, to_html, to_markdown
from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.contracts.findings import FINDINGS_REPORT, Findings
from attnlens.service.jobs import run_job_here
from attnlens.store.analyses import clustering_clusters, latest_clustering, newest_predictors
from attnlens.store.jobs import enqueue_job
from tests.store.signal_atlas import build_predicted_atlas

pytestmark = pytest.mark.slow
# The copied tiny atlas may hold experiments other tests ran on it; asking for a job that is none makes the
# dose section's absence (and its reason) independent of test order.
MISSING_EXPERIMENT = 10**9


@pytest.fixture(scope="module")
def reported(tiny_atlas, tmp_path_factory):
    settings, store = build_predicted_atlas(tiny_atlas[0], tmp_path_factory.mktemp("findings") / "data")
    parameters = {
        "model": settings.model.name, "checkpoint": "default", "reconstruction": False,
        "stability_heads": 4, "experiment_id": MISSING_EXPERIMENT,
    }  # fmt: skip
    job = run_job_here(
        settings, store, enqueue_job(store, FINDINGS_REPORT, parameters), None, JOB_HANDLERS[FINDINGS_REPORT]
    )
    assert job.state == "succeeded", job.error
    return settings, store, TypeAdapter(Findings).validate_python(job.result)


def test_correctness_rows_are_the_stored_predictors_with_their_baselines(reported):
    settings, store, findings = reported
    predictors = newest_predictors(store, settings.model.name)
    rows = {r.predictor_id: r for r in findings.correctness.rows}
    assert set(rows) == {p.predictor.id for p in predictors} and findings.correctness.reason is None
    for p in predictors:
        row, baselines = rows[p.predictor.id], p.evaluation.details["baselines"]
        assert (row.task, row.kind, row.n_rows) == (p.predictor.task, p.predictor.kind, p.evaluation.n_rows)
        assert row.accuracy.estimate == p.evaluation.accuracy
        assert row.confidence is not None and row.gain is not None  # the signal rows store confidence
        assert row.confidence.estimate == baselines["stratified"]["confidence"]["accuracy"]["estimate"]
        assert row.balanced_per_class == baselines["balanced"]["per_class"]
        assert row.exact_rows == baselines["exact_holes"]["attention"]["n_rows"]


def test_recurrence_counts_the_newest_clustering_and_its_stability_is_measured(reported):
    settings, store, findings = reported
    r = findings.recurrence
    clustering = latest_clustering(store, settings.model.name)
    assert r.clustering_id == clustering.id and r.reason is None
    with store.session() as session:
        clusters = clustering_clusters(session, clustering.id)
    real = [c for c in clusters if c.label >= 0]
    assert r.clusters == len(real) and r.patterns == sum(c.size for c in clusters)
    across = 0
    for c in real:
        tasks = c.attributes["task"]
        across += sum(n / sum(tasks.values()) >= r.task_share for n in tasks.values()) >= 2
    assert r.clusters_across_tasks == across
    assert r.clusters_per_head is not None and r.clusters_per_head.count == r.heads == 16
    # The signal rows give every head three well-separated directions: two halves, clustered apart,
    # must agree on them (the adjusted Rand index of unrelated labellings sits near 0).
    assert len(r.stability) == 4
    assert all(-1 <= s.adjusted_rand <= 1 for s in r.stability)
    assert r.stability_spread is not None and r.stability_spread.median > 0.5


def test_absent_sections_say_why_and_both_renderings_carry_the_same_figures(reported):
    _, _, findings = reported
    assert "switched off" in findings.reconstruction.reason and findings.reconstruction.model is None
    assert "eval-apmae --checkpoint C --model M" in findings.generalisation.reason
    assert f"job {MISSING_EXPERIMENT} is not a succeeded ablation experiment" in findings.dose.reason
    assert not findings.dose.points and "experiments list" in findings.dose.reason
    markdown, page = to_markdown(findings), to_html(findings)
    headings = (
        "(i) Reconstruction",
        "(ii) Generalisation",
        "(iii) Recurring",
        "(iv) Correctness",
        "(v) Ablation",
    )
    for heading in headings:
        assert heading in markdown and heading in page
    for row in findings.correctness.rows:
        assert ci(row.accuracy) in markdown and ci(row.accuracy) in page
        assert ci(row.confidence) in markdown
    assert findings.dose.reason in markdown
    assert page.count("plotly") > 0 and "<table>" in page
    assert asdict(TypeAdapter(Findings).validate_python(asdict(findings))) == asdict(findings)  # round trip


def test_spread_is_quartiles_and_extremes():
    from attnlens.atlas.findings import spread

    s = spread(np.arange(1, 10))
    assert (s.count, s.median, s.q1, s.q3, s.minimum, s.maximum) == (9, 5.0, 3.0, 7.0, 1.0, 9.0)
    assert spread([]) is None


def test_flips_read_as_counts_of_scenarios_not_as_shares():
    """Ablation flips are counts (`analysis.ablation.AblationStatistics`); the report once printed a count
    of 12 as "1200.0%"."""
    from attnlens.contracts.findings import (
        CorrectnessFinding,
        DoseFinding,
        DosePoint,
        Estimate,
        GeneralisationFinding,
        ReconstructionFinding,
        RecurrenceFinding,
    )

    point = DosePoint(
        rule="top_positive", n=5, n_heads=5, accuracy=Estimate(0.56, 0.5, 0.62),
        change=Estimate(0.06, 0.02, 0.1),
        incorrect_to_correct=Estimate(17.0, 11.0, 23.0), correct_to_incorrect=Estimate(5.0, 2.0, 9.0),
    )  # fmt: skip
    findings = Findings(
        model="m", embedder=None, created_at="2026-12-01T00:00:00+00:00", command="attnlens report",
        machine="x", inferences_per_task={"identifiers": 200},
        reconstruction=ReconstructionFinding(reason="off"),
        generalisation=GeneralisationFinding(models=["m"]),
        recurrence=RecurrenceFinding(reason="none"), correctness=CorrectnessFinding(reason="none"),
        dose=DoseFinding(experiment_id=3, task="identifiers", scenarios=200, balanced=True,
                         baseline_accuracy=0.5, points=[point]),
    )  # fmt: skip
    row = next(line for line in to_markdown(findings).splitlines() if line.startswith("| top_positive"))
    assert "| 17 [11, 23] | 5 [2, 9] |" in row and "1700" not in row
    assert "56.0% [50.0%, 62.0%]" in row and "+6.0 pt [+2.0 pt, +10.0 pt]" in row
