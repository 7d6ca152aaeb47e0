"""Writes inferences with head patterns of a chosen embedding space (model, embedder, width) into a real
database, through the store's API (as tests/store/fake_atlas.py does for one space)."""

from __future__ import annotations

import numpy as np

from attnlens.heads import HeadRef
from attnlens.store import Store
from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference


def add_inferences(
    store: Store,
    *,
    model: str,
    embedder: str | None,
    dim: int,
    n: int = 1,
    n_layers: int = 3,
    n_heads: int = 3,
    seed: int = 0,
    centres: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`n` inferences of `model` embedded by `embedder`; returns (pattern ids, embeddings) in write order.
    Embeddings cluster by head around `centres` ((heads, dim), seeded random when not given)."""
    rng = np.random.default_rng(seed)
    refs = [HeadRef(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    if centres is None:
        centres = np.random.default_rng(1000 + dim).standard_normal((len(refs), dim)).astype(np.float32) * 3
    ids: list[int] = []
    vectors = []
    with store.session() as session:
        for _ in range(n):
            inference_id = save_inference(
                session,
                model_name=model,
                prompt_ids=list(range(16)),
                completion_text="x",
                completion_ids=[1],
                first_token_correct=bool(rng.random() < 0.5),
                embedder=embedder,
            )
            embeddings = (centres + rng.standard_normal(centres.shape)).astype(np.float32)
            thumbnails = np.tril(rng.integers(0, 256, (len(refs), 8, 8))).astype(np.uint8)
            stats = {name: rng.random(len(refs)) for name in STAT_COLUMNS}
            ids += save_head_patterns(session, inference_id, refs, embeddings, thumbnails, stats)
            vectors.append(embeddings)
    return np.asarray(ids, dtype=np.int64), np.concatenate(vectors)
