"""Deleting what a finished job produced: its map, its clustering, its predictors, its pattern families, or
the result it holds itself (an experiment, a report, a sweep). Never a row another stored result still
uses without saying so: a clustering a predictor was trained on, or a predictor an experiment ranked heads
by, is refused (`InUse`, naming the users to delete first). A findings report holds its own copy of what it
cites, so a result it cites can go; the outcome says which reports keep a copy."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select

from attnlens.contracts.findings import FINDINGS_REPORT
from attnlens.contracts.jobs import (
    ABLATION_EXPERIMENT,
    ATLAS_BUILD,
    ATLAS_CLUSTER,
    ATLAS_MAP,
    HEAD_SWEEP,
    PATTERN_FAMILIES,
    TRAIN_PREDICTORS,
)
from attnlens.errors import InUse, InvalidInput
from attnlens.store.engine import Store
from attnlens.store.jobs import get_job
from attnlens.store.models import Clustering, FamilyRun, Job, PatternMap, Predictor

FINISHED = ("succeeded", "failed", "cancelled")
# Kinds whose whole result lives in the job row: deleting the result deletes the job.
RESULT_IN_JOB = (ABLATION_EXPERIMENT, FINDINGS_REPORT, HEAD_SWEEP)


@dataclass
class DeletedResult:
    """What a deletion removed, and the stored results that keep their own copy of it."""

    job_id: int
    kind: str
    job_deleted: bool = False
    maps: list[int] = field(default_factory=list)
    clusterings: list[int] = field(default_factory=list)
    predictors: list[int] = field(default_factory=list)
    family_runs: list[int] = field(default_factory=list)
    reports_keeping_a_copy: list[int] = field(default_factory=list)


def delete_job_result(store: Store, job_id: int) -> DeletedResult:
    """Delete what finished job `job_id` produced (see the module's rules); `NotFound` for no such job."""
    job = get_job(store, job_id)
    if job.state not in FINISHED:
        raise InvalidInput(f"job {job_id} is {job.state}; cancel it first (its result is not finished).")
    if job.kind == ATLAS_BUILD:
        raise InvalidInput(
            "an atlas build's inferences are the atlas itself and are not deleted as a job result; "
            "pasted inferences can be deleted one by one (DELETE /api/inferences/{id})."
        )
    outcome = DeletedResult(job_id=job_id, kind=job.kind)
    # Reads its users, then deletes: on SQLite the write lock is taken first, or a paste committing in
    # between would make the delete fail at once ("database is locked").
    with store.session(immediate=True) as session:
        if job.kind == ATLAS_MAP:
            outcome.maps = list(session.scalars(select(PatternMap.id).where(PatternMap.job_id == job_id)))
            session.execute(delete(PatternMap).where(PatternMap.id.in_(outcome.maps)))
        elif job.kind == ATLAS_CLUSTER:
            ids = list(session.scalars(select(Clustering.id).where(Clustering.job_id == job_id)))
            trained_on = session.execute(
                select(Predictor.id, Predictor.task, Predictor.kind).where(Predictor.clustering_id.in_(ids))
            ).all()
            if trained_on:
                named = ", ".join(f"#{pid} ({task or 'all'}, {kind})" for pid, task, kind in trained_on)
                clusterings = ", ".join(map(str, ids))
                raise InUse(
                    f"clustering {clusterings} of job {job_id} is the one predictors {named} were trained "
                    "on; delete those predictors first (their training job's result)."
                )
            outcome.clusterings = ids
            session.execute(delete(Clustering).where(Clustering.id.in_(ids)))
        elif job.kind == PATTERN_FAMILIES:
            # Notes about its families keep their text; the page then says the family run is gone.
            outcome.family_runs = list(
                session.scalars(select(FamilyRun.id).where(FamilyRun.job_id == job_id))
            )
            session.execute(delete(FamilyRun).where(FamilyRun.id.in_(outcome.family_runs)))
        elif job.kind == TRAIN_PREDICTORS:
            ids = list(session.scalars(select(Predictor.id).where(Predictor.job_id == job_id)))
            users = [
                other.id
                for other in session.scalars(select(Job).where(Job.kind == ABLATION_EXPERIMENT))
                if (other.result or {}).get("ranking_predictor_id") in ids
            ]
            if users:
                raise InUse(
                    f"experiments {', '.join(f'#{u}' for u in users)} ranked heads by predictors of job "
                    f"{job_id}; delete those experiments first."
                )
            outcome.predictors = ids
            session.execute(delete(Predictor).where(Predictor.id.in_(ids)))
        elif job.kind in RESULT_IN_JOB:
            outcome.reports_keeping_a_copy = [
                other.id
                for other in session.scalars(select(Job).where(Job.kind == FINDINGS_REPORT, Job.id != job_id))
                if _cites(other, job_id)
            ]
            session.execute(delete(Job).where(Job.id == job_id))
            outcome.job_deleted = True
        else:
            raise InvalidInput(f"job {job_id} ({job.kind}) has no result that can be deleted here.")
    return outcome


def _cites(report: Job, job_id: int) -> bool:
    """Whether a findings report took its dose curve from experiment `job_id` (DoseFinding.experiment_id)."""
    dose = (report.result or {}).get("dose") or {}
    return bool(dose.get("experiment_id") == job_id)
