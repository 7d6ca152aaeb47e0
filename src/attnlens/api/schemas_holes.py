"""What POST /api/analyze/holes returns: the hole(s) POST /api/analyze would complete for the same body,
found without running a model. Offsets count Unicode code points of `code`, as in the request."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class PreviewedHolePublic(BaseModel):
    """One hole a run would make."""

    task: str | None = Field(description="The task of the hole; null for a selection (as in /api/analyze).")
    node_type: str = Field(description="The tree-sitter node the hole was made from.")
    start: int = Field(description="The hole, [start, end) in code points: what the model completes.")
    end: int
    expected_text: str = Field(
        description="The code at the hole: /api/analyze reports it as `target_text` (when `aligned`)."
    )
    target_start: int = Field(
        description="The selection or the task's target, before the hole is widened to whole tokens."
    )
    target_end: int


class PreviewError(BaseModel):
    """The error /api/analyze would answer, in the API's one error shape (only with `inline_errors`)."""

    ok: Literal[False] = False
    status: int
    code: str
    error: str
    errors: list[dict[str, Any]] = Field(default_factory=list)


class HolesPreviewPublic(BaseModel):
    """The holes of a paste request, in the order /api/analyze answers them (first, then `others`)."""

    holes: list[PreviewedHolePublic]
    aligned: bool = Field(
        description="Whether each hole is widened to the served model's token boundaries, exactly as the "
        "run widens it. False while the model loads (its tokenizer is not at hand): then each hole is the "
        "selection or the task's target, and the run may still add the rest of a token on either side."
    )
    note: str | None = Field(None, description="Why the holes are not aligned, when they are not.")
    error: PreviewError | None = Field(
        None,
        description="With `inline_errors=true`: why no hole can be made (the error /api/analyze would "
        "answer), with `holes` empty, in a 200 answer. Without it that error is the answer itself (400/413/"
        "422).",
    )
