"""Notes and labels people give heads, clusters and families, and catalogues of known heads: read, write,
delete, import, export. Kept apart from the labels the atlas computes (GET /api/heads/{name})."""

from __future__ import annotations

from typing import Annotated, Literal, cast

from fastapi import APIRouter, Path, Query

from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep, StoreDep
from attnlens.api.schemas_notes import CatalogueImport, CatalogueImported, NotePublic, NoteRequest
from attnlens.contracts.notes import NOTE_KINDS, check_target, parse_catalogue
from attnlens.errors import InvalidInput
from attnlens.store.models import HeadNote
from attnlens.store.notes import add_note, all_notes, delete_note, import_catalogue, list_notes

router = APIRouter(tags=["notes"])


Origin = Literal["user", "catalogue"]


def note_public(row: HeadNote) -> NotePublic:
    return NotePublic(
        id=row.id, model=row.model_name, kind=row.kind, target=row.target, scope_id=row.scope_id,
        label=row.label, note=row.note, origin=cast(Origin, row.origin), source_url=row.source_url,
        author=row.author, created_at=row.created_at,
    )  # fmt: skip


@router.get("/notes", response_model=list[NotePublic])
def read_notes(
    session: SessionDep,
    settings: SettingsDep,
    kind: Annotated[str | None, Query(max_length=8, description="head, cluster or family.")] = None,
    target: Annotated[str | None, Query(max_length=64, description="e.g. L3H5, L3H5:2, 4.")] = None,
    model: ModelQuery = None,
) -> list[NotePublic]:
    """The notes of a model, optionally of one kind and target, oldest first."""
    if kind is not None and kind not in NOTE_KINDS:
        raise InvalidInput(f"unknown note kind {kind!r}; use one of {', '.join(NOTE_KINDS)}.")
    canonical = check_target(kind, target) if kind is not None and target is not None else target
    return [note_public(r) for r in list_notes(session, model or settings.model.name, kind, canonical)]


@router.post("/notes", response_model=NotePublic, status_code=201)
def create_note(body: NoteRequest, store: StoreDep, settings: SettingsDep) -> NotePublic:
    """Store a label and/or a note about a head, a cluster or a family (at least one of the two)."""
    if body.label is None and body.note is None:
        raise InvalidInput("a note needs a label, a note, or both.")
    if body.kind != "head" and body.scope_id is None:
        raise InvalidInput(
            f"a {body.kind}'s label only means something within its "
            f"{'clustering' if body.kind == 'cluster' else 'family run'}: give scope_id."
        )
    target = check_target(body.kind, body.target)
    with store.session(immediate=True) as session:
        row = add_note(
            session, model_name=body.model or settings.model.name, kind=body.kind, target=target,
            scope_id=body.scope_id, label=body.label, note=body.note, author=body.author,
        )  # fmt: skip
        return note_public(row)


@router.delete("/notes/{note_id}", status_code=204)
def remove_note(note_id: Annotated[int, Path(ge=1, le=2**62)], store: StoreDep) -> None:
    """Delete one note (a catalogue entry too; importing the catalogue again brings it back)."""
    with store.session(immediate=True) as session:
        delete_note(session, note_id)


@router.post("/notes/catalogue", response_model=CatalogueImported)
def import_notes(body: CatalogueImport, store: StoreDep) -> CatalogueImported:
    """Import a catalogue of known heads (`[{model, head, label, source, note?, author?}]`). Idempotent:
    entries already stored are skipped."""
    entries = parse_catalogue([e.model_dump(exclude_none=True) for e in body.entries])
    with store.session(immediate=True) as session:
        added, skipped = import_catalogue(session, entries)
    return CatalogueImported(added=added, skipped=skipped)


@router.get("/notes/export", response_model=list[NotePublic])
def export_notes(session: SessionDep) -> list[NotePublic]:
    """Every note of every model, as JSON (the catalogue's and the users' alike, each with its origin)."""
    return [note_public(r) for r in all_notes(session)]
