"""How big an atlas is: counts from the database and the index (cheap; used by health and the CLI)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from attnlens.config import Settings
from attnlens.store import Store
from attnlens.store.models import HeadPattern, Inference, Job, Scenario


def atlas_counts(settings: Settings, store: Store) -> dict[str, Any]:
    """Scenarios, inferences (and how many were right), head patterns, jobs by state, index vectors."""
    from attnlens.index import INDEX_FILENAME

    with store.session() as s:
        count = lambda model: s.scalar(select(func.count()).select_from(model)) or 0  # noqa: E731
        correct = s.scalar(select(func.count()).select_from(Inference).where(Inference.first_token_correct.is_(True))) or 0
        jobs = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        counts = {
            "scenarios": count(Scenario),
            "inferences": count(Inference),
            "inferences_first_token_correct": correct,
            "head_patterns": count(HeadPattern),
            "jobs": {state: int(n) for state, n in jobs.items()},
        }
    index_file = settings.index_dir / INDEX_FILENAME
    counts["index_file_bytes"] = index_file.stat().st_size if index_file.is_file() else 0
    return counts
