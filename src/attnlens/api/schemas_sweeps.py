"""What the ablation-sweep endpoints return."""

from __future__ import annotations

from pydantic import BaseModel, Field

from attnlens.api.schemas import JobPublic


class SweepRowPublic(BaseModel):
    """What ablating one head alone (or one whole layer) changed at the hole."""

    target: str = Field(description="`L{layer}H{head}`, or `L{layer}` for the whole layer.")
    layer: int
    head: int | None = Field(description="None for a whole layer.")
    p_expected: float | None = Field(description="p(expected first token) ablated; None: no target.")
    delta_p_expected: float | None = Field(description="p_expected minus the un-ablated p(expected).")
    kl: float = Field(description="KL(un-ablated || ablated) at the hole, nats.")
    top_token_id: int
    top_token: str = Field(description="The greedy first token with the ablation.")
    flipped: bool = Field(description="The greedy first token differs from the un-ablated one.")


class SweepPublic(BaseModel):
    """The newest sweep of one inference: its job (null before any), and, once it succeeded, one row per head
    and per layer."""

    inference_id: int
    job: JobPublic | None = Field(description="The newest sweep's job; null: no sweep of this inference yet.")
    expected_token: str | None = None
    baseline_p_expected: float | None = None
    baseline_top_token: str | None = None
    flipped: int | None = Field(None, description="Rows whose greedy first token flipped.")
    rows: list[SweepRowPublic] = Field(default_factory=list, description="Empty until the job succeeded.")
