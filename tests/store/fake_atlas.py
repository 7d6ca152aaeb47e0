"""Builds a small atlas in a real database: scenarios over two tasks, inferences with mixed correctness,
and head patterns whose embeddings cluster by head (so nearest neighbours mean something)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnlens.heads import HeadRef
from attnlens.store import Store, save_scenarios
from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference

TASKS = ("identifier", "closing_bracket")


@dataclass(frozen=True)
class FakeScenario:
    corpus: str
    file_path: str
    file_sha256: str
    task: str
    node_type: str
    hole_start: int
    hole_end: int
    target_text: str
    target_ids: list[int]
    prompt_ids: list[int]
    mode: str = "l2r"
    context_tokens: int = 16
    n_prefix_tokens: int = 16
    n_suffix_tokens: int = 0
    seed: int = 0
    alignment: str = "exact"


@dataclass
class FakeAtlas:
    pattern_ids: np.ndarray  # (n,) int64
    embeddings: np.ndarray  # (n, dim) float32 as given to the store
    layers: np.ndarray
    heads: np.ndarray
    tasks: np.ndarray
    correct: np.ndarray
    models: np.ndarray


def fill_atlas(
    store: Store, *, n_inferences: int = 20, n_layers: int = 2, n_heads: int = 3, dim: int = 32, seed: int = 0
) -> FakeAtlas:
    rng = np.random.default_rng(seed)
    refs = [HeadRef(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    centres = rng.standard_normal((len(refs), dim)).astype(np.float32) * 3
    scenarios = [
        FakeScenario(
            "fake", f"F{i}.java", f"{i:064x}", TASKS[i % 2], "identifier", 10, 12, "xy", [5], list(range(16))
        )
        for i in range(n_inferences)
    ]
    out: dict[str, list] = {k: [] for k in ("ids", "emb", "layer", "head", "task", "correct", "model")}
    with store.session() as session:
        scenario_ids = save_scenarios(session, scenarios, model_name="tiny")
        for i, scenario_id in enumerate(scenario_ids):
            model = "tiny" if i % 4 else "other"
            correct = bool(i % 3 == 0)
            inference_id = save_inference(
                session,
                model_name=model,
                scenario_id=scenario_id if model == "tiny" else None,
                prompt_ids=None if model == "tiny" else list(range(16)),
                completion_text="xy",
                completion_ids=[5],
                first_token_correct=correct,
                span_correct=correct,
                expected_token_prob=0.5,
            )
            embeddings = centres + rng.standard_normal(centres.shape).astype(np.float32)
            thumbnails = np.tril(rng.integers(0, 256, (len(refs), 8, 8))).astype(np.uint8)
            stats = {name: rng.random(len(refs)) for name in STAT_COLUMNS}
            ids = save_head_patterns(session, inference_id, refs, embeddings, thumbnails, stats)
            out["ids"] += ids
            out["emb"].append(embeddings)
            out["layer"] += [r.layer for r in refs]
            out["head"] += [r.head for r in refs]
            out["task"] += [scenarios[i].task if model == "tiny" else None] * len(refs)
            out["correct"] += [correct] * len(refs)
            out["model"] += [model] * len(refs)
    return FakeAtlas(
        pattern_ids=np.asarray(out["ids"], dtype=np.int64),
        embeddings=np.concatenate(out["emb"]),
        layers=np.asarray(out["layer"]),
        heads=np.asarray(out["head"]),
        tasks=np.asarray(out["task"], dtype=object),
        correct=np.asarray(out["correct"]),
        models=np.asarray(out["model"]),
    )
