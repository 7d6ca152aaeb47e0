"""Notes and labels people give heads, clusters and families, and catalogues of known heads: the kinds, the
limits, and checking a catalogue file before anything is stored (torch-free; the API and CLI share it).

A catalogue is a JSON list of entries, each `{"model": ..., "head": "L3H5", "label": ..., "source": URL}`
with an optional `"note"` (and `"author"`). Imported entries keep their source and are shown as the
catalogue's claims, beside (never merged into) the labels the atlas computes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef

NoteKind = Literal["head", "cluster", "family"]
NOTE_KINDS: tuple[NoteKind, ...] = ("head", "cluster", "family")
USER, CATALOGUE = "user", "catalogue"
MAX_LABEL_CHARS = 100
MAX_NOTE_CHARS = 5_000
MAX_URL_CHARS = 1_000
MAX_AUTHOR_CHARS = 100
MAX_CATALOGUE_ENTRIES = 10_000
_CLUSTER_TARGET = re.compile(r"^(L\d+H\d+):(-?\d+)$")
_URL = re.compile(r"^https?://\S+$")


def check_target(kind: str, target: str) -> str:
    """The canonical target of a note: `L3H5` (head), `L3H5:2` (cluster 2 of L3H5), `4` (family 4)."""
    if kind == "head":
        return HeadRef.parse(target).name
    if kind == "cluster":
        match = _CLUSTER_TARGET.match(target.strip())
        if match is None:
            raise InvalidInput(f"a cluster is named <head>:<label>, e.g. L3H5:2; got {target!r}.")
        return f"{HeadRef.parse(match.group(1)).name}:{int(match.group(2))}"
    if kind == "family":
        if not target.strip().lstrip("-").isdigit():
            raise InvalidInput(f"a family is named by its label, e.g. 4; got {target!r}.")
        return str(int(target))
    raise InvalidInput(f"unknown note kind {kind!r}; use one of {', '.join(NOTE_KINDS)}.")


def check_url(url: str | None) -> str | None:
    if url is None:
        return None
    if len(url) > MAX_URL_CHARS or not _URL.match(url):
        raise InvalidInput(
            f"a source must be an http(s) URL of at most {MAX_URL_CHARS} characters; got {url!r}."
        )
    return url


@dataclass(frozen=True)
class CatalogueEntry:
    model: str
    head: str  # canonical L{layer}H{head}
    label: str
    source_url: str
    note: str | None = None
    author: str | None = None


def _text(entry: dict[str, object], key: str, limit: int, where: str, *, required: bool) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where}: {key!r} must be a non-empty string.")
    if len(value) > limit:
        raise InvalidInput(f"{where}: {key!r} is longer than {limit} characters.")
    return value.strip()


def parse_catalogue(data: object) -> list[CatalogueEntry]:
    """Check a decoded catalogue (a list of entries); the first bad entry raises `InvalidInput` naming it."""
    if not isinstance(data, list):
        raise InvalidInput('a catalogue is a JSON list of {"model", "head", "label", "source"} objects.')
    if len(data) > MAX_CATALOGUE_ENTRIES:
        raise InvalidInput(f"a catalogue holds at most {MAX_CATALOGUE_ENTRIES} entries; got {len(data)}.")
    out = []
    for i, entry in enumerate(data):
        where = f"entry {i}"
        if not isinstance(entry, dict):
            raise InvalidInput(f"{where} is not an object.")
        unknown = set(entry) - {"model", "head", "label", "source", "note", "author"}
        if unknown:
            raise InvalidInput(f"{where} has unknown field(s) {', '.join(sorted(unknown))}.")
        model = _text(entry, "model", 200, where, required=True)
        head = _text(entry, "head", 20, where, required=True)
        label = _text(entry, "label", MAX_LABEL_CHARS, where, required=True)
        source = check_url(_text(entry, "source", MAX_URL_CHARS, where, required=True))
        assert model is not None and head is not None and label is not None and source is not None
        out.append(
            CatalogueEntry(
                model=model, head=HeadRef.parse(head).name, label=label, source_url=source,
                note=_text(entry, "note", MAX_NOTE_CHARS, where, required=False),
                author=_text(entry, "author", MAX_AUTHOR_CHARS, where, required=False),
            )
        )  # fmt: skip
    return out
