"""Notes, user labels and imported catalogue entries about heads, clusters and families."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from attnlens.contracts.notes import CATALOGUE, USER, CatalogueEntry
from attnlens.errors import NotFound
from attnlens.store.models import HeadNote


def add_note(
    session: Session,
    *,
    model_name: str,
    kind: str,
    target: str,
    scope_id: int | None,
    label: str | None,
    note: str | None,
    author: str | None,
) -> HeadNote:
    """A user's label and/or note (checked by the caller: `contracts.notes.check_target`)."""
    row = HeadNote(
        model_name=model_name, kind=kind, target=target, scope_id=scope_id, label=label, note=note,
        origin=USER, author=author,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def list_notes(
    session: Session, model_name: str, kind: str | None = None, target: str | None = None
) -> Sequence[HeadNote]:
    query = select(HeadNote).where(HeadNote.model_name == model_name)
    if kind is not None:
        query = query.where(HeadNote.kind == kind)
    if target is not None:
        query = query.where(HeadNote.target == target)
    return session.scalars(query.order_by(HeadNote.id)).all()


def all_notes(session: Session) -> Sequence[HeadNote]:
    return session.scalars(select(HeadNote).order_by(HeadNote.id)).all()


def delete_note(session: Session, note_id: int) -> None:
    row = session.get(HeadNote, note_id)
    if row is None:
        raise NotFound(f"no note with id {note_id}; list them with GET /api/notes.")
    session.delete(row)


def import_catalogue(session: Session, entries: Sequence[CatalogueEntry]) -> tuple[int, int]:
    """Store catalogue entries as head notes; an entry already stored (same model, head, label and source)
    is skipped, so importing a catalogue twice changes nothing. Returns (added, skipped)."""
    have = {
        (r.model_name, r.target, r.label, r.source_url)
        for r in session.scalars(select(HeadNote).where(HeadNote.origin == CATALOGUE))
    }
    added = 0
    for entry in entries:
        key = (entry.model, entry.head, entry.label, entry.source_url)
        if key in have:
            continue
        have.add(key)
        session.add(
            HeadNote(
                model_name=entry.model, kind="head", target=entry.head, label=entry.label, note=entry.note,
                origin=CATALOGUE, source_url=entry.source_url, author=entry.author,
            )
        )  # fmt: skip
        added += 1
    session.flush()
    return added, len(entries) - added
