"""Queries about stored completions: listing them with filters, one inference's head rows, and per-task
counts of an atlas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from attnlens.store.models import CorpusFile, HeadPattern, Inference, Scenario


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
        task: TaskCount(task, int(total), int(correct)) for task, total, correct in session.execute(query).all()
    }
