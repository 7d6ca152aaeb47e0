"""What deleting a job's result answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeletedResultPublic(BaseModel):
    """What was removed (ids by kind), and the findings reports that keep their own copy of it."""

    job_id: int
    kind: str
    job_deleted: bool = Field(description="The job row itself went (its result lived in it).")
    maps: list[int]
    clusterings: list[int]
    predictors: list[int]
    family_runs: list[int] = Field(default_factory=list, description="Pattern-family runs deleted.")
    reports_keeping_a_copy: list[int] = Field(
        description="Findings reports (job ids) that cite the deleted experiment and keep their copy of it."
    )
