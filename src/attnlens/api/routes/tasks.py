"""The task list, served once so that no page keeps a copy of it."""

from __future__ import annotations

from fastapi import APIRouter

from attnlens.analysis.stats import wilson_interval
from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep
from attnlens.api.schemas import TaskPublic
from attnlens.contracts.tasks import TASK_SPECS
from attnlens.store.inferences import task_counts

router = APIRouter(tags=["atlas"])


@router.get("/tasks", response_model=list[TaskPublic])
def read_tasks(session: SessionDep, settings: SettingsDep, model: ModelQuery = None) -> list[TaskPublic]:
    """Every task with what it can be used for (a cursor, automatic holes, a control), the atlas's (mined)
    completions of it for the model (default: the served one), and its stored pasted completions apart."""
    counts = task_counts(session, model or settings.model.name)
    out = []
    for spec in TASK_SPECS:
        count = counts.get(spec.name)
        interval = (
            wilson_interval(count.first_token_correct, count.inferences)
            if count and count.inferences
            else None
        )
        out.append(
            TaskPublic(
                name=spec.name,
                description=spec.description,
                at_cursor=spec.at_cursor,
                auto_holes=spec.auto_holes,
                control=spec.control,
                inferences=count.inferences if count else 0,
                first_token_correct=count.first_token_correct if count else 0,
                pasted=count.pasted if count else 0,
                first_token_accuracy_low=interval.low if interval else None,
                first_token_accuracy_high=interval.high if interval else None,
            )
        )
    return out
