"""Queries about stored completions: listing them with filters, one inference's head rows, per-task counts
of an atlas (mined rows; pasted code counted apart), and deleting pasted code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from attnlens.errors import InvalidInput, NotFound, StoreError
from attnlens.store.codecs import unpack_token_ids
from attnlens.store.engine import Store
from attnlens.store.models import (
    MINED,
    PASTED,
    PASTED_ALIGNMENT,
    PASTED_CORPUS,
    CorpusFile,
    HeadPattern,
    Inference,
    Job,
    Scenario,
)


@dataclass(frozen=True)
class InferenceFilter:
    """Filters of an inference listing; None means any."""

    task: str | None = None
    first_token_correct: bool | None = None
    span_correct: bool | None = None
    model_name: str | None = None
    file: str | None = None  # substring of the source file path
    text: str | None = None  # substring of the target or the completion
    source: str | None = None  # "mined" or "pasted"
    below_id: int | None = None  # ids under this only: the next page of a newest-first walk (keyset)


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
    if where.source is not None:
        query = query.where(Inference.source == where.source)
    if where.below_id is not None:
        query = query.where(Inference.id < where.below_id)
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
    """How many mined completions of one task a model has, how many had the right first token, and how
    many pasted completions of the task are stored besides (never part of the atlas's figures)."""

    task: str
    inferences: int
    first_token_correct: int
    pasted: int = 0


def task_counts(session: Session, model_name: str | None = None) -> dict[str, TaskCount]:
    """Per task: mined completions and their first-token-correct ones, and pasted completions apart (of one
    model, or of all). A task with only pasted completions has 0 mined ones."""
    mined = Inference.source == MINED
    query = (
        select(
            Scenario.task,
            func.count(Inference.id).filter(mined),
            func.count(Inference.id).filter(mined, Inference.first_token_correct.is_(True)),
            func.count(Inference.id).filter(Inference.source == PASTED),
        )
        .join(Inference, Inference.scenario_id == Scenario.id)
        .group_by(Scenario.task)
    )
    if model_name is not None:
        query = query.where(Inference.model_name == model_name)
    return {
        task: TaskCount(task, int(total), int(correct), int(pasted))
        for task, total, correct, pasted in session.execute(query).all()
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
    """The atlas's (mined) scenarios, inferences (and how many were right) and head patterns; pasted
    code's inferences and head patterns apart (`pasted_*`); and jobs by state."""
    with store.session() as s:

        def count(*conditions: Any, model: type[Scenario] | type[Inference] | type[HeadPattern]) -> int:
            return int(s.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)

        pasted_ids = select(Inference.id).where(Inference.source == PASTED)
        pasted_files = select(CorpusFile.id).where(CorpusFile.corpus == PASTED_CORPUS)
        mined_scenario = Scenario.corpus_file_id.not_in(pasted_files) & (
            Scenario.alignment != PASTED_ALIGNMENT
        )
        # All head patterns less the pasted ones: the pasted ones are few and found by index.
        pasted_patterns = count(HeadPattern.inference_id.in_(pasted_ids), model=HeadPattern)
        jobs = s.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        return {
            "scenarios": count(mined_scenario, model=Scenario),
            "inferences": count(Inference.source == MINED, model=Inference),
            "inferences_first_token_correct": count(
                Inference.source == MINED, Inference.first_token_correct.is_(True), model=Inference
            ),
            "head_patterns": count(model=HeadPattern) - pasted_patterns,
            "pasted_inferences": count(Inference.source == PASTED, model=Inference),
            "pasted_head_patterns": pasted_patterns,
            "jobs": {str(state): int(n) for state, n in jobs},
        }


def delete_pasted_inference(store: Store, inference_id: int) -> list[int]:
    """Delete a pasted inference with its head patterns (and, by cascade, their cluster assignments and
    map points), and its scenario and corpus file when nothing else uses them; returns the deleted head
    pattern ids (the index drops them at its next sync). `NotFound` for an unknown id; `InvalidInput` for
    a mined inference, which belongs to the atlas."""
    with store.session(immediate=True) as session:
        row = session.get(Inference, inference_id)
        if row is None:
            raise NotFound(f"no inference with id {inference_id}; list them with GET /api/inferences.")
        if row.source != PASTED:
            raise InvalidInput("only pasted code can be deleted; mined rows belong to the atlas.")
        pattern_ids = [
            int(i)
            for i in session.scalars(select(HeadPattern.id).where(HeadPattern.inference_id == inference_id))
        ]
        # Its scenario and file go too when they are pasted code's own and nothing else uses them.
        scenario, scenario_id, file_id = row.scenario, None, None
        if scenario is not None and scenario.alignment == PASTED_ALIGNMENT:
            scenario_id = scenario.id
            file_id = scenario.corpus_file_id if scenario.corpus_file.corpus == PASTED_CORPUS else None
        session.execute(delete(HeadPattern).where(HeadPattern.inference_id == inference_id))
        session.execute(delete(Inference).where(Inference.id == inference_id))

        def unused(*conditions: Any, model: type[Inference] | type[Scenario]) -> bool:
            return not session.scalar(select(func.count()).select_from(model).where(*conditions))

        if scenario_id is not None and unused(Inference.scenario_id == scenario_id, model=Inference):
            session.execute(delete(Scenario).where(Scenario.id == scenario_id))
            if file_id is not None and unused(Scenario.corpus_file_id == file_id, model=Scenario):
                session.execute(delete(CorpusFile).where(CorpusFile.id == file_id))
    return pattern_ids


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


def atlas_models(session: Session) -> list[str]:
    """The models with mined inferences in the atlas, sorted."""
    query = select(Inference.model_name).where(Inference.source == MINED).distinct()
    return sorted(session.scalars(query).all())
