"""Where AP-MAE training patterns come from: `random`-task completion windows over a Java corpus.

This is the one place that decides the data source. When `attnlens.mining` is installed, windows are its
`random`-task scenarios; until then (and for tests that must not depend on it) they are cut here from the
corpus's own tokenisation: one window per file, ending at a uniformly random token, the target being the
next 3-10 tokens (the paper's random span; only its first token decides correctness).

It also decides the split of every file, by a hash of its path: `train` (what AP-MAE learns from),
`validation` (what training scores periodically and picks its best step on) and `test` (never seen by training
nor by the choice of step; what `attnlens eval-apmae` reports).
"""

from __future__ import annotations

import hashlib
import logging
import random
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from attnlens.errors import CorpusError

if TYPE_CHECKING:
    from attnlens.model import TargetModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """One completion scenario: what the model sees and the token it should produce next."""

    file_path: str
    prompt_ids: list[int]
    target_ids: list[int]
    end: int = -1  # where the prompt ends in the file's own tokenisation (-1: not known)


SPLITS = ("train", "validation", "test")


def split_bucket(file_path: str) -> int:
    """0-99 from the SHA-256 of the path: the same in every run and on every machine."""
    digest = hashlib.sha256(file_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100


def split_of(file_path: str, validation_percent: int, test_percent: int = 0) -> str:
    """Deterministic three-way split by file: buckets below `validation_percent` are `validation` (the old
    single held-out share, so caches built before the test split keep their meaning), the next
    `test_percent` buckets are `test`, the rest `train`. A file is on one side in every run."""
    if validation_percent < 0 or test_percent < 0 or validation_percent + test_percent > 100:
        raise ValueError(f"split shares {validation_percent}% + {test_percent}% must lie within 0-100%.")
    bucket = split_bucket(file_path)
    if bucket < validation_percent:
        return "validation"
    if bucket < validation_percent + test_percent:
        return "test"
    return "train"


def source_kind(choice: str = "auto") -> str:
    """`mining` (the `random` task's windows) unless `windows` (cut here) is chosen; a cache records which
    one produced it."""
    return choice if choice in ("mining", "windows") else "mining"


def iter_windows(
    model: TargetModel,
    corpus: Path,
    *,
    context_tokens: int,
    seed: int,
    max_file_bytes: int,
    source: str = "auto",
) -> Iterator[Window]:
    """Deterministic stream of `random`-task windows of exactly `context_tokens` prompt tokens."""
    if source_kind(source) == "mining":
        yield from _mined_windows(
            model, corpus, context_tokens=context_tokens, seed=seed, max_file_bytes=max_file_bytes
        )
    else:
        yield from _cut_windows(
            model, corpus, context_tokens=context_tokens, seed=seed, max_file_bytes=max_file_bytes
        )


def _mined_windows(
    model: TargetModel, corpus: Path, *, context_tokens: int, seed: int, max_file_bytes: int
) -> Iterator[Window]:
    from attnlens.mining import iter_corpus, mine_scenarios

    files = iter_corpus(corpus, max_file_bytes=max_file_bytes)
    scenarios = mine_scenarios(
        files,
        tokenizer=model.tokenizer,
        fim=model.info.fim,
        tasks=["random"],
        per_task=10**9,  # the caller stops the stream when it has enough
        context_tokens=context_tokens,
        seed=seed,
    )
    for scenario in scenarios:
        yield Window(scenario.file_path, list(scenario.prompt_ids), list(scenario.target_ids))


@contextmanager
def _java_corpus(corpus: Path, max_file_bytes: int) -> Iterator[tuple[list[str], Callable[[str], bytes]]]:
    """The .java file names of a folder or a zip (such as the JDK's src.zip), sorted, and a reader that
    loads one file at a time (a whole corpus is never held in memory)."""
    if not corpus.exists():
        raise CorpusError(f"corpus {corpus} does not exist; pass a folder or a .zip of .java files.")
    if corpus.is_file() and zipfile.is_zipfile(corpus):
        with zipfile.ZipFile(corpus) as archive:
            names = sorted(
                m.filename
                for m in archive.infolist()
                if m.filename.endswith(".java") and m.file_size <= max_file_bytes
            )
            yield names, archive.read
        return
    if corpus.is_dir():
        paths = sorted(p for p in corpus.rglob("*.java") if p.stat().st_size <= max_file_bytes)
        yield [str(p.relative_to(corpus)) for p in paths], lambda name: (corpus / name).read_bytes()
        return
    raise CorpusError(
        f"corpus {corpus} is neither a folder nor a zip; pass a folder or a .zip of .java files."
    )


def _lead(model: TargetModel) -> list[int]:
    """What opens every prompt: the BOS of a model trained with one (as mined prompts do, see
    `attnlens.mining.tokens.prompt_bos_of`), so that its patterns are the atlas's kind; else nothing."""
    from attnlens.mining.tokens import prompt_bos_of

    bos = prompt_bos_of(model.tokenizer)
    return [] if bos is None else [bos]


def _prompt(lead: list[int], ids: list[int], end: int, context_tokens: int) -> list[int]:
    """The `context_tokens` prompt ending at `end` in the file's tokens, `lead` first."""
    return [*lead, *ids[end - context_tokens + len(lead) : end]]


def _cut_windows(
    model: TargetModel, corpus: Path, *, context_tokens: int, seed: int, max_file_bytes: int
) -> Iterator[Window]:
    rng = random.Random(seed)
    lead = _lead(model)
    with _java_corpus(corpus, max_file_bytes) as (names, read):
        rng.shuffle(names)  # a seeded random order, so any prefix of the stream spans the corpus
        for name in names:
            ids = model.encode(read(name).decode("utf-8", errors="replace"))
            if len(ids) < context_tokens + 10:
                continue
            end = rng.randint(context_tokens, len(ids) - 10)
            span = rng.randint(3, 10)
            yield Window(name, _prompt(lead, ids, end, context_tokens), ids[end : end + span], end)


def cut_at(
    model: TargetModel,
    corpus: Path,
    entries: Iterable[tuple[str, int, int]],
    *,
    context_tokens: int,
    max_file_bytes: int,
) -> tuple[list[Window], list[str]]:
    """The windows named by (file, end, span) entries, cut from each file's own tokenisation as
    `_cut_windows` cuts them; returns them and a note for every entry the corpus could not give."""
    windows: list[Window] = []
    problems: list[str] = []
    lead = _lead(model)
    with _java_corpus(corpus, max_file_bytes) as (names, read):
        present = set(names)
        for name, end, span in entries:
            if name not in present:
                problems.append(f"{name}: not in {corpus}")
                continue
            ids = model.encode(read(name).decode("utf-8", errors="replace"))
            if not context_tokens <= end <= len(ids) - span:
                problems.append(f"{name}: {len(ids)} tokens, too short for a window ending at {end}")
                continue
            windows.append(Window(name, _prompt(lead, ids, end, context_tokens), ids[end : end + span], end))
    return windows, problems


def cut_files(
    model: TargetModel,
    corpus: Path,
    entries: Iterable[tuple[str, int]],
    *,
    context_tokens: int,
    seed: int,
    max_file_bytes: int,
) -> tuple[list[Window], list[str]]:
    """One window per (file, span) entry, ending where a draw seeded by the seed and the file's path puts it
    in this model's tokenisation: the same files as a manifest made with another tokenizer, whose token
    positions do not carry over. Returns the windows and a note for every entry the corpus could not give."""
    windows: list[Window] = []
    problems: list[str] = []
    lead = _lead(model)
    with _java_corpus(corpus, max_file_bytes) as (names, read):
        present = set(names)
        for name, span in entries:
            if name not in present:
                problems.append(f"{name}: not in {corpus}")
                continue
            ids = model.encode(read(name).decode("utf-8", errors="replace"))
            if len(ids) < context_tokens + span:
                problems.append(f"{name}: {len(ids)} tokens, too short for a {context_tokens}-token window")
                continue
            end = random.Random(f"{seed}|{name}").randint(context_tokens, len(ids) - span)
            windows.append(Window(name, _prompt(lead, ids, end, context_tokens), ids[end : end + span], end))
    return windows, problems


def window_digest(windows: Iterable[Window]) -> str:
    """SHA-256 over the files and token ids of `windows`, in order: equal digests, equal windows."""
    digest = hashlib.sha256()
    for w in windows:
        digest.update(f"{w.file_path}|{w.prompt_ids}|{w.target_ids};".encode())
    return digest.hexdigest()
