"""A disk cache of scaled head patterns, so that training and evaluation never re-run the target model.

Layout of a cache folder:
    meta.json           what produced it (model, corpus, sizes, seed, split) and how far it got
    shard-00000.npz     `images` float16 (n, s, s) already pooled and log-normalised, with per-row
                        `layer`, `head`, `window` (index in the window stream), `correct`, `split` (0 train,
                        1 validation, 2 test), `heldout` (= validation, as caches written before the test
                        split have it), and the window's `file`; plus `windows`, how many stream windows
                        the shard consumed
Shards are written to a temporary name and renamed, so a killed build leaves only whole shards, and a
rerun continues after the last one.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Float

from attnlens.apmae.scaling import prepare_patterns
from attnlens.apmae.sources import SPLITS, Window, iter_windows, source_kind, split_of, window_digest
from attnlens.errors import CheckpointMismatch, CorpusError, InsufficientData

if TYPE_CHECKING:
    from attnlens.model import TargetModel

log = logging.getLogger(__name__)

META = "meta.json"


@dataclass(frozen=True)
class CacheSpec:
    """Everything that decides a cache's content; a rerun with a different spec is refused."""

    model: str
    corpus: str
    source: str  # "mining" or "windows" (see attnlens.apmae.sources)
    source_length: int
    image_size: int
    heads_fraction: float
    heldout_percent: int  # the `validation` share (best-step selection); its old name, kept for old caches
    seed: int
    max_file_bytes: int
    test_percent: int = 0  # the `test` share, never trained or selected on (0 in caches built before it)
    # `all`: every window of the stream, split by file hash; `test`: only the stream's test-split windows;
    # `manifest:<name>`: the windows a test manifest names (attnlens.apmae.testset), all of them `test`
    selection: str = "all"

    def split(self, file_path: str) -> str:
        """Which split a window of `file_path` belongs to in this cache."""
        if self.selection != "all":
            return "test"
        return split_of(file_path, self.heldout_percent, self.test_percent)


@dataclass
class PatternSet:
    """Scaled patterns loaded from a cache, with where each came from."""

    images: Float[torch.Tensor, "n s s"]  # float16
    layer: torch.Tensor  # (n,) int
    head: torch.Tensor  # (n,) int
    window: torch.Tensor  # (n,) int: which inference
    correct: torch.Tensor  # (n,) bool
    files: list[str]  # (n,)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("shard-*.npz"))


def read_spec(folder: Path) -> CacheSpec:
    if not (folder / META).is_file():
        raise CorpusError(
            f"no pattern cache in {folder}; build one with `attnlens train-apmae` (it caches before "
            "training) or pass --cache with an existing cache folder."
        )
    meta = json.loads((folder / META).read_text())
    return CacheSpec(**meta["spec"])


def choose_heads(n_layers: int, n_heads: int, fraction: float, rng: random.Random) -> list[tuple[int, int]]:
    """`int(fraction * n_heads)` random heads (at least one) from every layer, as the paper samples."""
    per_layer = n_heads if fraction >= 1 else max(1, int(fraction * n_heads))
    return [
        (layer, head) for layer in range(n_layers) for head in sorted(rng.sample(range(n_heads), per_layer))
    ]


def spec_windows(model: TargetModel, corpus: Path, spec: CacheSpec) -> Iterator[Window]:
    """The deterministic window stream a cache spec describes (the same windows on every machine)."""
    return iter_windows(
        model,
        corpus,
        context_tokens=spec.source_length,
        seed=spec.seed,
        max_file_bytes=spec.max_file_bytes,
        source=spec.source,
    )


def build_cache(
    model: TargetModel,
    corpus: Path,
    folder: Path,
    *,
    spec: CacheSpec,
    windows: int,
    shard_windows: int = 32,
    capture_batch: int = 1,  # batching is slower on CPU (eager attention of 270 heads per sequence)
    progress: bool = True,
    stream: Iterable[Window] | None = None,
) -> int:
    """Run the target model over `windows` corpus windows and store their scaled patterns.

    The windows are the spec's stream over the corpus, or `stream` when given (a test set's chosen
    windows; `spec` must then say how they were chosen). Resumable: windows already in the folder's shards
    are skipped. Returns the number of windows cached.
    """
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / META).exists() and read_spec(folder) != spec:
        raise CheckpointMismatch(
            f"the pattern cache in {folder} was built with {read_spec(folder)}; this run asks for {spec}. "
            "Use another --cache folder or delete this one."
        )
    (folder / META).write_text(json.dumps({"spec": asdict(spec)}, indent=2))
    done = 0
    for shard in _shards(folder):
        with np.load(shard) as data:
            done += int(data["windows"])
    if stream is None:
        stream = spec_windows(model, corpus, spec)
    stream = islice(stream, done, windows)
    bar = tqdm(total=windows, initial=done, desc="caching patterns", unit="window", disable=not progress)
    index = done
    while index < windows:
        chunk = list(islice(stream, min(shard_windows, windows - index)))
        if not chunk:
            break
        rows: dict[str, list] = {
            k: [] for k in ("images", "layer", "head", "window", "correct", "split", "file")
        }
        for start in range(0, len(chunk), capture_batch):
            batch = chunk[start : start + capture_batch]
            capture = model.capture([w.prompt_ids for w in batch])
            for offset, w in enumerate(batch):
                # seeded by the window itself, so a test set rebuilt apart from its training cache gets the
                # same heads of the same window
                rng = random.Random(f"{spec.seed}|{window_digest([w])}")
                heads = choose_heads(model.info.n_layers, model.info.n_heads, spec.heads_fraction, rng)
                layers = torch.tensor([h[0] for h in heads])
                picked = capture.attention[offset][layers, torch.tensor([h[1] for h in heads])]  # (n, q, k)
                images = prepare_patterns(
                    picked, source_length=spec.source_length, max_length=spec.image_size
                )
                correct = bool(int(capture.last_logits[offset].argmax()) == w.target_ids[0])
                rows["images"].append(images.half().cpu().numpy())
                rows["layer"] += [h[0] for h in heads]
                rows["head"] += [h[1] for h in heads]
                rows["window"] += [index + start + offset] * len(heads)
                rows["correct"] += [correct] * len(heads)
                rows["split"] += [SPLITS.index(spec.split(w.file_path))] * len(heads)
                rows["file"] += [w.file_path] * len(heads)
            bar.update(len(batch))
        target = folder / f"shard-{len(_shards(folder)):05d}.npz"
        tmp = target.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            images=np.concatenate(rows["images"]),
            layer=np.asarray(rows["layer"], dtype=np.int16),
            head=np.asarray(rows["head"], dtype=np.int16),
            window=np.asarray(rows["window"], dtype=np.int32),
            correct=np.asarray(rows["correct"], dtype=bool),
            split=np.asarray(rows["split"], dtype=np.int8),
            heldout=np.asarray(rows["split"], dtype=np.int8) == SPLITS.index("validation"),
            path=np.asarray(rows["file"]),
            windows=np.asarray(len(chunk)),
        )
        os.replace(tmp, target)
        index += len(chunk)
    bar.close()
    if index < windows:
        log.warning("the corpus ran out after %d windows (asked for %d)", index, windows)
    return index


def default_spec(
    model: TargetModel,
    corpus: Path,
    *,
    source_length: int,
    image_size: int,
    source: str = "auto",
    **kw: object,
) -> CacheSpec:
    return CacheSpec(
        model=model.info.name,
        corpus=str(corpus.resolve()),
        source=source_kind(source),
        source_length=source_length,
        image_size=image_size,
        **kw,  # type: ignore[arg-type]
    )


def _split_column(data: np.lib.npyio.NpzFile) -> np.ndarray:
    """Per-row split codes (index in SPLITS); caches from before the test split only have `heldout`."""
    if "split" in data.files:
        return data["split"]
    return np.where(data["heldout"], SPLITS.index("validation"), SPLITS.index("train")).astype(np.int8)


def _check_split(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}.")
    return SPLITS.index(split)


def cached_windows(folder: Path) -> int:
    """How many stream windows the cache's shards consumed."""
    total = 0
    for shard in _shards(folder):
        with np.load(shard) as data:
            total += int(data["windows"])
    return total


def split_counts(folder: Path, *, correct_only: bool) -> dict[str, dict[str, int]]:
    """Patterns and inferences (windows) per split, read from the small columns only (no images)."""
    patterns = dict.fromkeys(SPLITS, 0)
    windows: dict[str, set[int]] = {split: set() for split in SPLITS}
    for shard in _shards(folder):
        with np.load(shard) as data:
            codes = _split_column(data)
            keep = data["correct"] if correct_only else np.ones(len(codes), dtype=bool)
            for code, split in enumerate(SPLITS):
                rows = keep & (codes == code)
                patterns[split] += int(rows.sum())
                windows[split].update(int(w) for w in np.unique(data["window"][rows]))
    return {split: {"patterns": patterns[split], "inferences": len(windows[split])} for split in SPLITS}


def load_patterns(folder: Path, *, split: str, correct_only: bool) -> PatternSet:
    """All cached patterns of one split (`train`, `validation` or `test`), optionally correct completions
    only."""
    code = _check_split(split)
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("images", "layer", "head", "window", "correct", "file")
    }
    for shard in _shards(folder):
        with np.load(shard) as data:
            keep = _split_column(data) == code
            if correct_only:
                keep &= data["correct"]
            for key in parts:
                # "file" is stored as "path": np.savez reserves the keyword `file`.
                parts[key].append(data["path" if key == "file" else key][keep])
    total = sum(len(p) for p in parts["layer"])
    if total == 0:
        hint = {
            "train": "cache more windows (--windows) or lower the validation and test shares.",
            "validation": "cache more windows (--windows) or raise --validation-percent.",
            "test": (
                "this cache was built without a test split (--test-percent 0, or before test splits "
                "existed); score a checkpoint on its test split with `attnlens eval-apmae` without --cache."
            ),
        }[split]
        raise InsufficientData(
            f"the cache in {folder} holds no {split} "
            f"patterns{' of correct completions' if correct_only else ''}; {hint}"
        )
    joined = {k: np.concatenate(v) for k, v in parts.items()}
    return PatternSet(
        images=torch.from_numpy(joined["images"]),
        layer=torch.from_numpy(joined["layer"].astype(np.int64)),
        head=torch.from_numpy(joined["head"].astype(np.int64)),
        window=torch.from_numpy(joined["window"].astype(np.int64)),
        correct=torch.from_numpy(joined["correct"]),
        files=[str(f) for f in joined["file"]],
    )


def mean_image(folder: Path, *, correct_only: bool) -> Float[torch.Tensor, "s s"]:
    """Per-pixel mean of the training split (the `mean_image` baseline), streamed shard by shard."""
    total: np.ndarray | None = None
    count = 0
    for shard in _shards(folder):
        with np.load(shard) as data:
            keep = _split_column(data) == SPLITS.index("train")
            if correct_only:
                keep &= data["correct"]
            images = data["images"][keep].astype(np.float64)
        total = images.sum(axis=0) if total is None else total + images.sum(axis=0)
        count += images.shape[0]
    if total is None or count == 0:
        raise InsufficientData(f"the cache in {folder} holds no training patterns; cache more windows first.")
    return torch.from_numpy((total / count).astype(np.float32))
