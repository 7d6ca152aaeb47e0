"""Embedding spaces and the manifest that names each space's index files.

A space is a (model, embedder) pair: vectors of different AP-MAE checkpoints (or of one checkpoint over
different models' patterns) are not comparable, so each space has its own index. Its files, in the
index folder:

- `<slug>.g<generation>.faiss`: the main index (flat, or IVF-PQ when large), rewritten only by a rebuild
  or a fold;
- `<slug>.g<generation>.delta.faiss`: a small flat index of the vectors added since (append-only; a
  paste rewrites this file alone), folded into a new main generation when it grows past
  `IndexSettings.delta_max_vectors`;
- `manifest.json`: for every space, its model, embedder, slug, current generation, the main index's
  count, largest id and width, and the fingerprint of the database's inferences the index reflects
  (`attnlens.store.index_rows.SpaceInferences`: what an incremental sync compares). A new generation is
  committed by writing the manifest (atomically) after its main file, and its delta starts empty (a new
  file name), so a crash at any point leaves a consistent pair of files in force; files of older
  generations are deleted afterwards.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from attnlens.errors import StoreError
from attnlens.index.files import write_bytes_atomically

MANIFEST_FILENAME = "manifest.json"
MANIFEST_FORMAT = 1
# The one index file of every space before issue 12 (spaces were mixed in it). `sync_index` adopts it as
# the main index of the only space when the database holds one, else replaces it with per-space indexes.
LEGACY_INDEX_FILENAME = "patterns.faiss"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class IndexSpace:
    """One embedding space: the target model and the AP-MAE checkpoint (None: not recorded)."""

    model: str
    embedder: str | None

    def __lt__(self, other: IndexSpace) -> bool:  # sorted(): by model, then embedder (None first)
        return (self.model, self.embedder is not None, self.embedder or "") < (
            other.model,
            other.embedder is not None,
            other.embedder or "",
        )

    @property
    def slug(self) -> str:
        """A file-name-safe, unique name: readable parts of both names plus a hash of the exact pair."""
        digest = hashlib.sha256(json.dumps([self.model, self.embedder]).encode()).hexdigest()[:10]
        model = _UNSAFE.sub("-", self.model).strip("-.")[:40] or "model"
        # A checkpoint is often a long path whose end says most (`.../apmae-starcoder2-3b-mae/best`).
        embedder = "none" if self.embedder is None else _UNSAFE.sub("-", self.embedder).strip("-.")[-40:]
        return f"{model}__{embedder.strip('-.') or 'embedder'}__{digest}"

    def __str__(self) -> str:
        return f"{self.model} / {self.embedder if self.embedder is not None else '(no embedder)'}"


@dataclass(frozen=True)
class SpaceEntry:
    """A space's line in the manifest. `generation` 0 has no main file (only a delta, or nothing)."""

    model: str
    embedder: str | None
    slug: str
    generation: int = 0
    main_count: int = 0
    main_max_id: int = 0
    dim: int | None = None
    kind: str = "empty"
    # The database's inferences of this space that the index holds the head patterns of.
    inferences: int = 0
    inference_id_sum: int = 0
    max_inference_id: int = 0

    @property
    def main_facts(self) -> tuple[int, str, int, int]:
        """What names and describes the main file: a reader reloads it when these change."""
        return (self.generation, self.kind, self.main_count, self.main_max_id)

    @property
    def space(self) -> IndexSpace:
        return IndexSpace(self.model, self.embedder)

    def main_file(self, folder: Path) -> Path:
        """Where this generation's main index is (it exists unless `kind` is empty)."""
        return folder / f"{self.slug}.g{self.generation}.faiss"

    def delta_file(self, folder: Path) -> Path:
        return folder / f"{self.slug}.g{self.generation}.delta.faiss"

    def next_generation(self, **facts: Any) -> SpaceEntry:
        return replace(self, generation=self.generation + 1, **facts)

    @classmethod
    def new(cls, space: IndexSpace) -> SpaceEntry:
        return cls(space.model, space.embedder, space.slug)


@dataclass
class Manifest:
    spaces: dict[IndexSpace, SpaceEntry] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST_FILENAME
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
            entries = [SpaceEntry(**line) for line in data["spaces"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"the index manifest {path} is unreadable ({exc}); rebuild with `attnlens index rebuild`."
            ) from exc
        return cls({entry.space: entry for entry in entries})

    def write(self, folder: Path) -> None:
        lines = [asdict(self.spaces[space]) for space in sorted(self.spaces)]
        text = json.dumps({"format": MANIFEST_FORMAT, "spaces": lines}, indent=1)
        write_bytes_atomically(text.encode(), folder / MANIFEST_FILENAME)


def space_files(folder: Path, slug: str) -> list[Path]:
    """Every file of one space in the folder, whatever its generation (and leftover `.tmp` files)."""
    return sorted(folder.glob(f"{slug}.g*"))  # slugs hold no glob characters
