"""A disk cache of scaled head patterns, so that training and evaluation never re-run the target model.

Layout of a cache folder:
    meta.json           what produced it (model, corpus, sizes, seed, split) and how far it got
    shard-00000.npz     `images` float16 (n, s, s) already pooled and log-normalised, with per-row
                        `layer`, `head`, `window` (index in the window stream), `correct`, `heldout`,
                        and the window's `file`; plus `windows`, how many stream windows the shard consumed
Shards are written to a temporary name and renamed, so a killed build leaves only whole shards, and a
rerun continues after the last one.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Float

from attnlens.apmae.scaling import prepare_patterns
from attnlens.apmae.sources import is_heldout, iter_windows, source_kind
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
    heldout_percent: int
    seed: int
    max_file_bytes: int


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
) -> int:
    """Run the target model over `windows` corpus windows and store their scaled patterns.

    Resumable: windows already in the folder's shards are skipped. Returns the number of windows cached.
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
    stream = iter_windows(
        model,
        corpus,
        context_tokens=spec.source_length,
        seed=spec.seed,
        max_file_bytes=spec.max_file_bytes,
        source=spec.source,
    )
    stream = islice(stream, done, windows)
    rng = random.Random(spec.seed * 1_000_003 + done)
    bar = tqdm(total=windows, initial=done, desc="caching patterns", unit="window", disable=not progress)
    index = done
    while index < windows:
        chunk = list(islice(stream, min(shard_windows, windows - index)))
        if not chunk:
            break
        rows: dict[str, list] = {
            k: [] for k in ("images", "layer", "head", "window", "correct", "heldout", "file")
        }
        for start in range(0, len(chunk), capture_batch):
            batch = chunk[start : start + capture_batch]
            capture = model.capture([w.prompt_ids for w in batch])
            for offset, w in enumerate(batch):
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
                rows["heldout"] += [is_heldout(w.file_path, spec.heldout_percent)] * len(heads)
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
            heldout=np.asarray(rows["heldout"], dtype=bool),
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


def load_patterns(folder: Path, *, heldout: bool, correct_only: bool) -> PatternSet:
    """All cached patterns of one split (training or held-out), optionally correct completions only."""
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("images", "layer", "head", "window", "correct", "file")
    }
    for shard in _shards(folder):
        with np.load(shard) as data:
            keep = data["heldout"] == heldout
            if correct_only:
                keep &= data["correct"]
            for key in parts:
                # "file" is stored as "path": np.savez reserves the keyword `file`.
                parts[key].append(data["path" if key == "file" else key][keep])
    total = sum(len(p) for p in parts["layer"])
    if total == 0:
        split = "held-out" if heldout else "training"
        raise InsufficientData(
            f"the cache in {folder} holds no {split} "
            f"patterns{' of correct completions' if correct_only else ''}; "
            "cache more windows (--windows) or lower the held-out share."
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
            keep = ~data["heldout"]
            if correct_only:
                keep &= data["correct"]
            images = data["images"][keep].astype(np.float64)
        total = images.sum(axis=0) if total is None else total + images.sum(axis=0)
        count += images.shape[0]
    if total is None or count == 0:
        raise InsufficientData(f"the cache in {folder} holds no training patterns; cache more windows first.")
    return torch.from_numpy((total / count).astype(np.float32))
