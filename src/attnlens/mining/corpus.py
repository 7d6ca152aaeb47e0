"""Reading Java corpora: a folder of `.java` files, a zip or jar of sources, a JSONL file, a HF dataset.

Every reader streams: only names (or line offsets) are held in memory, never file contents. Files
that are binary, not UTF-8, empty, oversized or exact duplicates are skipped and counted in
`MiningStats.skipped`, never fatal. With `shuffle_seed` the order is a seeded permutation, so that the
first files mined come from all over the corpus, the same ones for the same seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from attnlens.errors import CorpusError
from attnlens.mining.stats import MiningStats

log = logging.getLogger(__name__)

HF_PREFIX = "hf:"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
ZIP_SUFFIXES = (".zip", ".jar")
JSONL_PATH_FIELDS = ("path", "file_path", "max_stars_repo_path", "filename")
# Stackless_Java_V2 flags files that are near-duplicates of StarCoder2's training data here; the paper's
# first loaders dropped them (contamination), and so do we.
NEAR_DUPLICATE_FIELD = "near_dups_stkv2_idx"


@dataclass(frozen=True)
class SourceFile:
    """One Java file of a corpus; `text` is its exact UTF-8 content (BOM and line endings kept)."""

    path: str  # inside the corpus
    text: str
    sha256: str  # of the UTF-8 bytes
    corpus: str


class _Screen:
    """The checks every reader shares: size, text-ness, exact duplicates."""

    def __init__(self, corpus: str, max_file_bytes: int, stats: MiningStats) -> None:
        self.corpus = corpus
        self.max_file_bytes = max_file_bytes
        self.stats = stats
        self.seen: set[bytes] = set()

    def too_big(self, size: int) -> bool:
        if size > self.max_file_bytes:
            self.stats.skip("oversized")
            return True
        return False

    def accept(self, path: str, raw: bytes) -> SourceFile | None:
        if self.too_big(len(raw)):
            return None
        if not raw.strip():
            self.stats.skip("empty")
            return None
        if b"\x00" in raw:
            self.stats.skip("binary")
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.stats.skip("not_utf8")
            return None
        digest = hashlib.sha256(raw).digest()
        if digest in self.seen:
            self.stats.skip("duplicate")
            return None
        self.seen.add(digest)
        self.stats.files_read += 1
        return SourceFile(path=path, text=text, sha256=digest.hex(), corpus=self.corpus)


def iter_corpus(
    path: str | Path,
    *,
    max_file_bytes: int,
    stats: MiningStats | None = None,
    shuffle_seed: int | None = None,
    jsonl_field: str = "content",
    hf_config: str | None = None,
    hf_split: str = "train",
) -> Iterator[SourceFile]:
    """Stream the Java files of a corpus.

    Args:
        path: a folder (every `*.java` below it), a `.zip`/`.jar`, a `.jsonl` file (one JSON object per
            line, text in `jsonl_field`), a single `.java` file, or `hf:<dataset id>` (needs `datasets`).
        max_file_bytes: larger files are skipped as `oversized`.
        stats: counters to fill in (files read, skipped by reason).
        shuffle_seed: None keeps the corpus order; an int reads the files in a seeded random order.

    Raises:
        CorpusError: the path does not exist or is of a kind we cannot read.
    """
    stats = stats if stats is not None else MiningStats()
    spec = str(path)
    if spec.startswith(HF_PREFIX):
        screen = _Screen(spec, max_file_bytes, stats)
        yield from _iter_hf(spec[len(HF_PREFIX) :], screen, shuffle_seed, jsonl_field, hf_config, hf_split)
        return
    location = Path(path).expanduser()
    if not location.exists():
        raise CorpusError(
            f"corpus {spec!r} does not exist; give a folder, a .zip/.jar, a .jsonl file or hf:<id>."
        )
    screen = _Screen(str(location.resolve()), max_file_bytes, stats)
    name = location.name.lower()
    if location.is_dir():
        yield from _iter_folder(location, screen, shuffle_seed)
    elif name.endswith(ZIP_SUFFIXES):
        yield from _iter_zip(location, screen, shuffle_seed)
    elif name.endswith(JSONL_SUFFIXES):
        yield from _iter_jsonl(location, screen, shuffle_seed, jsonl_field)
    elif name.endswith(".java"):
        yield from _read_files(location.parent, [location.name], screen)
    else:
        raise CorpusError(
            f"cannot read corpus {spec!r}: expected a folder, a .zip or .jar of sources, a .jsonl file, "
            "a .java file, or hf:<dataset id>."
        )


def _shuffled(names: list, seed: int | None) -> list:
    if seed is not None:
        random.Random(seed).shuffle(names)
    return names


def _iter_folder(root: Path, screen: _Screen, seed: int | None) -> Iterator[SourceFile]:
    names: list[str] = []
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()  # os.walk order depends on the file system; ours must not
        base = Path(folder).relative_to(root)
        names.extend((base / f).as_posix() for f in sorted(files) if f.endswith(".java"))
    yield from _read_files(root, _shuffled(names, seed), screen)


def _read_files(root: Path, names: list[str], screen: _Screen) -> Iterator[SourceFile]:
    for name in names:
        file = root / name
        try:
            if screen.too_big(file.stat().st_size):
                continue
            raw = file.read_bytes()
        except OSError as exc:
            log.warning("skipping unreadable %s: %s", file, exc)
            screen.stats.skip("unreadable")
            continue
        source = screen.accept(name, raw)
        if source is not None:
            yield source


def _iter_zip(archive: Path, screen: _Screen, seed: int | None) -> Iterator[SourceFile]:
    try:
        with zipfile.ZipFile(archive) as bundle:
            infos = [i for i in bundle.infolist() if not i.is_dir() and i.filename.endswith(".java")]
            for info in _shuffled(infos, seed):
                if screen.too_big(info.file_size):
                    continue
                try:
                    raw = bundle.read(info)
                except (zipfile.BadZipFile, OSError, RuntimeError) as exc:  # CRC errors, encrypted entries
                    log.warning("skipping unreadable %s in %s: %s", info.filename, archive, exc)
                    screen.stats.skip("unreadable")
                    continue
                source = screen.accept(info.filename, raw)
                if source is not None:
                    yield source
    except zipfile.BadZipFile as exc:
        raise CorpusError(
            f"{archive} is not a readable zip/jar ({exc}); give the sources archive itself."
        ) from exc


def _line_offsets(file: Path) -> list[int]:
    offsets, position = [], 0
    with open(file, "rb") as handle:
        for line in handle:
            offsets.append(position)
            position += len(line)
    return offsets


def _iter_jsonl(file: Path, screen: _Screen, seed: int | None, field_name: str) -> Iterator[SourceFile]:
    # Shuffling needs random access; a first pass records where each line starts (a few bytes a line).
    offsets = _line_offsets(file)
    order = _shuffled(list(range(len(offsets))), seed)
    with open(file, "rb") as handle:
        for number in order:
            handle.seek(offsets[number])
            line = handle.readline()
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                screen.stats.skip("bad_json_line")
                continue
            source = _from_row(row, f"line:{number + 1}", screen, field_name)
            if source is not None:
                yield source


def _from_row(row: object, fallback_path: str, screen: _Screen, field_name: str) -> SourceFile | None:
    if not isinstance(row, dict) or not isinstance(row.get(field_name), str):
        screen.stats.skip("missing_field")
        return None
    if row.get(NEAR_DUPLICATE_FIELD):
        screen.stats.skip("near_duplicate_of_training_data")
        return None
    path = next((row[k] for k in JSONL_PATH_FIELDS if isinstance(row.get(k), str) and row[k]), fallback_path)
    try:
        raw = row[field_name].encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a JSON \ud800 escape
        screen.stats.skip("not_utf8")
        return None
    return screen.accept(path, raw)


def _iter_hf(
    dataset_id: str,
    screen: _Screen,
    seed: int | None,
    field_name: str,
    config: str | None,
    split: str,
) -> Iterator[SourceFile]:
    try:
        from datasets import load_dataset
    except ImportError as exc:
        raise CorpusError(
            "reading a Hugging Face dataset needs the `datasets` package (pip install datasets) and "
            "network access; or export the dataset to JSONL and pass that file."
        ) from exc
    try:
        rows = load_dataset(dataset_id, config, split=split, streaming=True)
    except Exception as exc:  # datasets raises many unrelated types for a missing dataset or network
        raise CorpusError(
            f"could not open dataset {dataset_id!r} (config {config!r}, split {split!r}): {exc}"
        ) from exc
    if seed is not None:
        rows = rows.shuffle(seed=seed, buffer_size=10_000)
    for number, row in enumerate(rows):
        source = _from_row(row, f"{split}:{number}", screen, field_name)
        if source is not None:
            yield source
