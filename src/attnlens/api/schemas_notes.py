"""Notes, user labels and catalogue entries about heads, clusters and families."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from attnlens.contracts.notes import MAX_AUTHOR_CHARS, MAX_CATALOGUE_ENTRIES, MAX_LABEL_CHARS, MAX_NOTE_CHARS


class NoteRequest(BaseModel):
    """A label and/or a note about a head, a cluster or a family."""

    kind: Literal["head", "cluster", "family"]
    target: str = Field(
        max_length=64, description="`L3H5` (head), `L3H5:2` (cluster 2 of L3H5), `4` (family 4)."
    )
    scope_id: int | None = Field(
        None, ge=1, le=2**62, description="The clustering (cluster) or family run (family) the target is in."
    )
    label: str | None = Field(None, min_length=1, max_length=MAX_LABEL_CHARS)
    note: str | None = Field(None, min_length=1, max_length=MAX_NOTE_CHARS)
    author: str | None = Field(None, min_length=1, max_length=MAX_AUTHOR_CHARS)
    model: str | None = Field(None, max_length=200, description="Target model [default: the served one].")


class NotePublic(BaseModel):
    id: int
    model: str
    kind: str
    target: str
    scope_id: int | None
    label: str | None
    note: str | None
    origin: Literal["user", "catalogue"] = Field(
        description="`user`: written here; `catalogue`: imported, with its `source_url`. Neither is a label "
        "the atlas computed."
    )
    source_url: str | None
    author: str | None
    created_at: datetime


class CatalogueEntryRequest(BaseModel):
    model: str = Field(max_length=200)
    head: str = Field(max_length=20)
    label: str = Field(max_length=MAX_LABEL_CHARS)
    source: str = Field(max_length=1000, description="An http(s) URL: where the claim comes from.")
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS)
    author: str | None = Field(None, max_length=MAX_AUTHOR_CHARS)


class CatalogueImport(BaseModel):
    entries: list[CatalogueEntryRequest] = Field(max_length=MAX_CATALOGUE_ENTRIES)


class CatalogueImported(BaseModel):
    added: int
    skipped: int = Field(description="Entries already stored (same model, head, label and source).")
