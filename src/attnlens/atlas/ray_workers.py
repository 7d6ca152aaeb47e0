"""What runs inside Ray's processes for the Ray build (`attnlens.atlas.ray_build`, the driver): the actor
that holds the target model and AP-MAE and writes what it makes, and the mining task. Importing this module
needs no Ray: the driver makes them remote with the resources of its plan."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from attnlens.atlas.build import BuildRequest, mine_request, process_resilient, write_processed
from attnlens.config import Settings
from attnlens.mining import MiningStats, Scenario
from attnlens.store import open_store
from attnlens.store.inferences import scenarios_without_inference

if TYPE_CHECKING:
    from attnlens.contracts.models import FimTokens
    from attnlens.model.target import ModelInfo


@dataclass(frozen=True)
class BatchOutcome:
    """What an actor did with one batch (the head patterns themselves stay in the database)."""

    stored: int  # inferences this call wrote
    skipped: int  # scenarios some earlier call (a retried batch, another builder) had stored
    head_patterns: int
    failures: list[tuple[int, str]] = field(default_factory=list)  # (scenario id, error)


class BuildActor:
    """The target model and AP-MAE in one process, writing what it makes to the shared store (a plain
    class: `run_ray_build` makes it a Ray actor with the plan's resources)."""

    def __init__(self, settings: Settings, embedder: str, threads: int) -> None:
        import torch

        from attnlens.apmae.load import load_apmae
        from attnlens.model import TargetModel

        # As many threads as the actor was given CPUs: more would fight the other actors for the cores.
        torch.set_num_threads(max(1, threads))
        self.settings = settings
        self.embedder = embedder
        self.model = TargetModel.from_settings(settings)
        self.embed = load_apmae(settings).embed_with_errors
        self.store = open_store(settings)

    def info(self) -> ModelInfo:
        return self.model.info

    def pid(self) -> int:
        return os.getpid()

    def process(self, batch: list[tuple[int, Scenario]]) -> BatchOutcome:
        todo = set(scenarios_without_inference(self.store, self.model.info.name, [i for i, _ in batch]))
        work = [(i, s) for i, s in batch if i in todo]
        if not work:
            return BatchOutcome(stored=0, skipped=len(batch), head_patterns=0)
        items, failures = process_resilient(self.model, self.embed, work, self.settings)
        new_ids = write_processed(self.store, self.model, items, self.embedder)
        heads = self.model.info.n_layers * self.model.info.n_heads
        stored = len(new_ids) // heads if heads else 0
        return BatchOutcome(
            stored=stored,
            skipped=len(batch) - len(work) + len(items) - stored,
            head_patterns=len(new_ids),
            failures=failures,
        )


def mine_tasks(
    settings: Settings, request: BuildRequest, tasks: list[str]
) -> tuple[list[Scenario], MiningStats, FimTokens | None]:
    """The scenarios of some of the tasks (a Ray CPU task), and the FIM markers they were built with:
    only the tokenizer is loaded, never the weights."""
    from attnlens.mining import fim_tokens_of
    from attnlens.model.loading import load_tokenizer

    tokenizer = load_tokenizer(
        settings.model.name, models_dir=settings.models_dir, revision=settings.model.revision
    )
    fim = fim_tokens_of(tokenizer)
    scenarios, stats = mine_request(settings, request, tokenizer, fim, tasks)
    return scenarios, stats, fim


def task_groups(tasks: Sequence[str], cpus: int) -> list[list[str]]:
    """The tasks dealt into at most `cpus` groups, each mined by one Ray task in one pass over the files
    (a file is parsed and tokenized once per group: as few groups as keep every CPU busy)."""
    count = max(1, min(len(tasks), cpus))
    return [list(tasks[i::count]) for i in range(count) if tasks[i::count]]
