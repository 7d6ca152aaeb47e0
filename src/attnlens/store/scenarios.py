"""Writing mined scenarios (and their corpus files) idempotently, and reading them back.

`save_scenarios` takes the mining engineer's `Scenario` dataclass by duck typing (attribute access), so
the store does not import the miner (it sits below it in the layering).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from attnlens.errors import InvalidInput
from attnlens.store.codecs import pack_token_ids
from attnlens.store.models import CorpusFile, Scenario

MODES = ("fim", "l2r")
# Rows per IN (...) lookup: well under SQLite's bound-parameter limit.
_LOOKUP_CHUNK = 400

ScenarioKey = tuple[int, str, str, int, int, str, int]


def _chunks(items: Sequence[Any], size: int = _LOOKUP_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def corpus_file_ids(session: Session, files: Iterable[tuple[str, str, str, int | None]]) -> dict[str, int]:
    """Get or create corpus files given as `(corpus, path, sha256, n_bytes)`; returns sha256 -> id.

    A file is identified by its content hash: the same bytes under another path are the same file.
    """
    wanted: dict[str, tuple[str, str, str, int | None]] = {}
    for corpus, path, sha256, n_bytes in files:
        wanted.setdefault(sha256, (corpus, path, sha256, n_bytes))
    found: dict[str, int] = {}
    for chunk in _chunks(list(wanted)):
        rows = session.execute(select(CorpusFile.sha256, CorpusFile.id).where(CorpusFile.sha256.in_(chunk)))
        found.update((sha256, file_id) for sha256, file_id in rows)
    new = [
        CorpusFile(corpus=c, path=p, sha256=h, n_bytes=n)
        for h, (c, p, _, n) in wanted.items()
        if h not in found
    ]
    if new:
        session.add_all(new)
        session.flush()
        found.update((f.sha256, f.id) for f in new)
    return found


def _key(corpus_file_id: int, model_name: str, s: Any) -> ScenarioKey:
    return (
        corpus_file_id,
        model_name,
        s.task,
        int(s.hole_start),
        int(s.hole_end),
        s.mode,
        int(s.context_tokens),
    )


def _row(corpus_file_id: int, model_name: str, s: Any) -> Scenario:
    if s.mode not in MODES:
        raise InvalidInput(f"scenario mode {s.mode!r} is not one of {MODES}; the miner must set fim or l2r.")
    if not 0 <= s.hole_start <= s.hole_end:
        raise InvalidInput(
            f"scenario hole [{s.hole_start}, {s.hole_end}) is not a byte range of {s.file_path}."
        )
    return Scenario(
        corpus_file_id=corpus_file_id,
        model_name=model_name,
        task=s.task,
        node_type=s.node_type,
        mode=s.mode,
        hole_start=int(s.hole_start),
        hole_end=int(s.hole_end),
        target_text=s.target_text,
        target_ids=pack_token_ids(s.target_ids),
        prompt_ids=pack_token_ids(s.prompt_ids),
        context_tokens=int(s.context_tokens),
        n_prefix_tokens=int(s.n_prefix_tokens),
        n_suffix_tokens=int(s.n_suffix_tokens),
        seed=int(s.seed),
        alignment=str(s.alignment),
    )


def save_scenarios(session: Session, scenarios: Iterable[Any], *, model_name: str) -> list[int]:
    """Store mined scenarios (with their corpus files); return their ids in input order.

    Idempotent: a scenario already stored (same file sha256, model, task, hole offsets, mode and context
    length) is not stored again, and its existing id is returned. Each item needs the attributes of
    `attnlens.mining.Scenario`; a `file_n_bytes` attribute, if present, fills `corpus_file.n_bytes`.
    Several processes writing the same scenarios at once on SQLite should use `store.session(immediate=True)`.
    """
    items = list(scenarios)
    if not items:
        return []
    file_ids = corpus_file_ids(
        session,
        ((s.corpus, s.file_path, s.file_sha256, getattr(s, "file_n_bytes", None)) for s in items),
    )
    keys = [_key(file_ids[s.file_sha256], model_name, s) for s in items]
    existing: dict[ScenarioKey, int] = {}
    columns = (
        Scenario.corpus_file_id,
        Scenario.model_name,
        Scenario.task,
        Scenario.hole_start,
        Scenario.hole_end,
        Scenario.mode,
        Scenario.context_tokens,
    )
    key_columns = tuple_(*columns)
    unique_keys = list(dict.fromkeys(keys))
    for chunk in _chunks(unique_keys, _LOOKUP_CHUNK // 8):
        rows = session.execute(select(*columns, Scenario.id).where(key_columns.in_(chunk)))
        existing.update((tuple(row[:-1]), row[-1]) for row in rows)  # type: ignore[misc]
    new_rows: dict[ScenarioKey, Scenario] = {}
    for key, s in zip(keys, items, strict=True):
        if key not in existing and key not in new_rows:
            new_rows[key] = _row(key[0], model_name, s)
    if new_rows:
        session.add_all(new_rows.values())
        session.flush()
        existing.update((key, row.id) for key, row in new_rows.items())
    return [existing[key] for key in keys]
