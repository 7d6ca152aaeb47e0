"""A second model's completions written into an atlas beside the first one's, with the store's own write
functions: scenarios of two tasks, mined inferences (some right, some wrong) embedded by their own
checkpoint, and head patterns on another grid than the tiny StarCoder2's 4 x 4, with every head-type score
and reconstruction error stored, so that the head pages have profiles for it."""

from __future__ import annotations

from hashlib import sha256

import numpy as np

from attnlens.contracts.head_scores import HEAD_SCORES_VERSION, RELATIONAL_SCORE_NAMES
from attnlens.heads import HeadRef
from attnlens.store import Store, save_scenarios
from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference
from tests.store.fake_atlas import FakeScenario

SECOND_MODEL = "tiny-second"
SECOND_GRID = (2, 3)  # layers x heads
SECOND_EMBEDDER = "second-apmae"
SECOND_TASKS = ("identifiers", "closing_bracket")


def add_second_model(
    store: Store,
    name: str = SECOND_MODEL,
    *,
    n: int = 8,
    grid: tuple[int, int] = SECOND_GRID,
    embedder: str = SECOND_EMBEDDER,
    dim: int = 32,
    seed: int = 5,
    tasks: tuple[str, ...] = SECOND_TASKS,
) -> list[int]:
    """`n` mined inferences of model `name` (`tasks` in turn, every third one right) with their head
    patterns on `grid`; returns the inference ids."""
    rng = np.random.default_rng(seed)
    refs = [HeadRef(layer, head) for layer in range(grid[0]) for head in range(grid[1])]
    scenarios = [
        FakeScenario("second", f"Second{i}.java", sha256(f"{name}:{i}".encode()).hexdigest(),
                     tasks[i % len(tasks)], "identifier", 0, 2, "xy", [5, 6], list(range(20, 36)))
        for i in range(n)
    ]  # fmt: skip
    ids = []
    with store.session() as session:
        for i, scenario_id in enumerate(save_scenarios(session, scenarios, model_name=name)):
            correct = i % 3 == 0
            inference_id = save_inference(
                session, model_name=name, scenario_id=scenario_id, first_token_correct=correct,
                completion_text="xy" if correct else "zz", completion_ids=[5, 6] if correct else [7, 7],
                span_correct=correct,
                expected_token_prob=0.4, confidence=(0.6, 0.2, 1.0), embedder=embedder,
                head_scores_version=HEAD_SCORES_VERSION,
            )  # fmt: skip
            stats = {column: rng.random(len(refs)) for column in (*STAT_COLUMNS, *RELATIONAL_SCORE_NAMES)}
            save_head_patterns(
                session, inference_id, refs, rng.normal(size=(len(refs), dim)),
                np.tril(rng.integers(0, 256, (len(refs), 8, 8))).astype(np.uint8), stats,
                reconstruction_errors=rng.random(len(refs)),
            )  # fmt: skip
            ids.append(inference_id)
    return ids
