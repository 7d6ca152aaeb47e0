"""Queries about stored completions: listing them with filters, one inference's head rows, and per-task
counts of an atlas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from attnlens.errors import StoreError
from attnlens.store.codecs import unpack_token_ids
from attnlens.store.engine import Store
from attnlens.store.models import CorpusFile, HeadPattern, Inference, Job, Scenario


@dataclass(frozen=True)
class InferenceFilter:
    """Filters of an inference listing; None means any."""

    task: str | None = None
    first_token_correct: bool | None = None
    span_correct: bool | None = None
    model_name: str | None = None
    file: str | None = None  # substring of the source file path
    text: str | None = None  # substring of the target or the completion


def list_inferences(
    session: Session, where: InferenceFilter, *, limit: int, offset: int
) -> tuple[int, Sequence[Inference]]:
    """(how many match, the page of them newest first)."""
    query = select(Inference).outerjoin(Scenario, Scenario.id == Inference.scenario_id)
    if where.file is not None:
        query = query.outerjoin(CorpusFile, CorpusFile.id == Scenario.corpus_file_id)
        query = query.where(CorpusFile.path.contains(where.file, autoescape=True))
    if where.task is not None:
        query = query.where(Scenario.task == where.task)
    if where.first_token_correct is not None:
        query = query.where(Inference.first_token_correct == where.first_token_correct)
    if where.span_correct is not None:
        query = query.where(Inference.span_correct == where.span_correct)
    if where.model_name is not None:
        query = query.where(Inference.model_name == where.model_name)
    if where.text:
        query = query.where(
            or_(
                Scenario.target_text.contains(where.text, autoescape=True),
                Inference.completion_text.contains(where.text, autoescape=True),
            )
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Inference.id.desc()).limit(limit).offset(offset)).all()
    return int(total), rows


def inference_heads(session: Session, inference_id: int) -> Sequence[HeadPattern]:
    """Every head pattern of one inference in (layer, head) order."""
    return session.scalars(
        select(HeadPattern)
        .where(HeadPattern.inference_id == inference_id)
        .order_by(HeadPattern.layer, HeadPattern.head)
    ).all()


@dataclass(frozen=True)
class TaskCount:
    """How many completions of one task a model has, and how many had the right first token."""

    task: str
    inferences: int
    first_token_correct: int


def task_counts(session: Session, model_name: str | None = None) -> dict[str, TaskCount]:
    """Per task: completions and first-token-correct completions (of one model, or of all)."""
    query = (
        select(
            Scenario.task,
            func.count(Inference.id),
            func.count(Inference.id).filter(Inference.first_token_correct.is_(True)),
        )
        .join(Inference, Inference.scenario_id == Scenario.id)
        .group_by(Scenario.task)
    )
    if model_name is not None:
        query = query.where(Inference.model_name == model_name)
    return {
        task: TaskCount(task, int(total), int(correct))
        for task, total, correct in session.execute(query).all()
    }


def scenario_holes(store: Store, task: str) -> set[tuple[str, int, int]]:
    """(file sha256, hole start, hole end) of every stored scenario of `task`: the holes an atlas already
    holds, which a held-out experiment must not reuse."""
    with store.session() as session:
        rows = session.execute(
            select(CorpusFile.sha256, Scenario.hole_start, Scenario.hole_end)
            .join(CorpusFile, CorpusFile.id == Scenario.corpus_file_id)
            .where(Scenario.task == task)
        ).all()
    return {(str(sha), int(start), int(end)) for sha, start, end in rows}


def atlas_counts(store: Store) -> dict[str, Any]:
    """Scenarios, inferences (and how many were right), head patterns, and jobs by state."""
    with store.session() as s:

        def count(model: type[Scenario] | type[Inference] | type[HeadPattern]) -> int:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

        correct = s.scalar(
            select(func.count()).select_from(Inference).where(Inference.first_token_correct.is_(True))
        )
        jobs = s.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        return {
            "scenarios": count(Scenario),
            "inferences": count(Inference),
            "inferences_first_token_correct": int(correct or 0),
            "head_patterns": count(HeadPattern),
            "jobs": {str(state): int(n) for state, n in jobs},
        }


def scenarios_without_inference(store: Store, model_name: str, scenario_ids: Sequence[int]) -> list[int]:
    """The scenario ids that have no inference for `model_name` yet, in the given order."""
    done: set[int] = set()
    with store.session() as session:
        for start in range(0, len(scenario_ids), 500):
            chunk = list(scenario_ids[start : start + 500])
            done.update(
                session.scalars(
                    select(Inference.scenario_id).where(
                        Inference.model_name == model_name, Inference.scenario_id.in_(chunk)
                    )
                )
            )
    return [i for i in scenario_ids if i not in done]


def inference_of_scenario(store: Store, scenario_id: int, model_name: str) -> int | None:
    """The id of a model's inference of a scenario, if it was run."""
    with store.session() as session:
        found = session.scalar(
            select(Inference.id).where(
                Inference.scenario_id == scenario_id, Inference.model_name == model_name
            )
        )
    return None if found is None else int(found)


def prompt_ids_of(inference: Inference) -> list[int]:
    """The exact token ids the model saw: the inference's own, or its scenario's."""
    if inference.prompt_ids:
        return unpack_token_ids(inference.prompt_ids)
    if inference.scenario is None:
        raise StoreError(
            f"inference {inference.id} has neither prompt ids nor a scenario; the row is damaged."
        )
    return unpack_token_ids(inference.scenario.prompt_ids)


def get_inference(session: Session, inference_id: int) -> Inference | None:
    return session.get(Inference, inference_id)
