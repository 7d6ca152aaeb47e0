"""The atlas build: mine scenarios, run the target model in batches, embed every head, store it all.

Resumable by construction. Mining is deterministic for a seed and `save_scenarios` is idempotent, so a
restarted build finds the same scenarios; a scenario is done exactly when its inference row exists
(unique per scenario and model), and each inference is written with all its head patterns in one
transaction. Killed at any point (kill -9 included), a restart skips what was committed and redoes the
rest: nothing lost, nothing duplicated. The FAISS index is derived from the database and synced from it
(`attnlens.index`), so it agrees with the database after every run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnlens.atlas.jobs import run_here
from attnlens.atlas.process import Embedder, ProcessedInference, process_batch
from attnlens.config import Settings
from attnlens.contracts.head_scores import HEAD_SCORES_VERSION
from attnlens.contracts.models import FimTokens
from attnlens.errors import AttnLensError
from attnlens.heads import HeadRef
from attnlens.mining import MiningStats, Scenario, iter_corpus, mine_scenarios
from attnlens.model import TargetModel
from attnlens.store import Store, save_scenarios
from attnlens.store.inferences import scenarios_without_inference
from attnlens.store.models import MINED
from attnlens.store.patterns import save_inference_with_heads

log = logging.getLogger(__name__)

# progress(done, total (None: not known yet), message)
ProgressFn = Callable[[int, int | None, str], None]


@dataclass
class BuildReport:
    """What one build run did."""

    scenarios: int = 0
    already_done: int = 0
    processed: int = 0
    failed: int = 0
    head_patterns: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    failures: list[str] = field(default_factory=list)  # "scenario <id>: <error>", the first few
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, where the engine times them
    mining: dict[str, Any] = field(default_factory=dict)
    new_pattern_ids: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "new_pattern_ids"}
        data["inferences_per_minute"] = 60 * self.processed / self.seconds if self.seconds else 0.0
        data["head_patterns_per_second"] = self.head_patterns / self.seconds if self.seconds else 0.0
        return data


@dataclass(frozen=True)
class BuildRequest:
    """What to build: which corpus, tasks and how many scenarios per task."""

    corpus: str
    tasks: Sequence[str]
    per_task: int
    seed: int = 0
    batch_size: int = 4


def mine_request(
    settings: Settings,
    request: BuildRequest,
    tokenizer: Any,
    fim: FimTokens | None,
    tasks: Sequence[str] | None = None,
) -> tuple[list[Scenario], MiningStats]:
    """The request's scenarios (deterministic for its seed), of `tasks` if given (a Ray build mines groups
    of them apart), with the mining counts."""
    stats = MiningStats()
    files = iter_corpus(
        Path(request.corpus) if not request.corpus.startswith("hf:") else request.corpus,
        max_file_bytes=settings.mining.max_file_bytes,
        stats=stats,
        shuffle_seed=request.seed,
    )
    scenarios = mine_scenarios(
        files,
        tokenizer=tokenizer,
        fim=fim,
        tasks=list(request.tasks if tasks is None else tasks),
        per_task=request.per_task,
        context_tokens=settings.mining.context_tokens,
        seed=request.seed,
        stats=stats,
    )
    return list(scenarios), stats


def mine_and_save(
    settings: Settings, store: Store, model: TargetModel, request: BuildRequest
) -> tuple[dict[int, Scenario], MiningStats]:
    """Mine the request's scenarios (deterministic for its seed) and store them; returns id -> scenario."""
    scenarios, stats = mine_request(settings, request, model.tokenizer, model.info.fim)
    # The write lock from the start: a deferred transaction reads (which scenarios exist) and then writes,
    # and on SQLite that upgrade fails at once ("database is locked", no busy wait) if another process
    # (a paste) committed in between.
    with store.session(immediate=True) as session:
        ids = save_scenarios(session, scenarios, model_name=model.info.name)
    return dict(zip(ids, scenarios, strict=True)), stats


def write_processed(
    store: Store,
    model: TargetModel,
    items: Sequence[tuple[int, ProcessedInference]],
    embedder: str,
    *,
    prompt_text: str | None = None,
    source: str = MINED,
) -> list[int]:
    """Store inferences with their head patterns, one transaction per inference; returns the new head
    pattern ids. An inference another builder stored meanwhile is skipped (the unique key says so).
    `prompt_text` keeps the source text of pasted code (a corpus file has its own); `source` is `mined`
    for the atlas and `pasted` for pasted code, which no analysis reads."""
    heads = [HeadRef(layer, h) for layer in range(model.info.n_layers) for h in range(model.info.n_heads)]
    new_ids: list[int] = []
    for scenario_id, item in items:
        saved = save_inference_with_heads(
            store,
            inference={
                "model_name": model.info.name,
                "scenario_id": scenario_id,
                "prompt_text": prompt_text,
                "completion_text": item.completion_text,
                "completion_ids": item.completion_ids,
                "first_token_correct": item.first_token_correct,
                "span_correct": item.span_correct,
                "expected_token_prob": item.expected_token_prob,
                "confidence": (item.confidence.top1_prob, item.confidence.margin, item.confidence.entropy),
                "embedder": embedder,
                "source": source,
                "head_scores_version": HEAD_SCORES_VERSION,
            },
            heads=heads,
            embeddings=item.embeddings,
            thumbnails=item.thumbnails,
            stats=item.stats,
            reconstruction_errors=item.reconstruction_errors,
        )
        if saved is None:
            log.info("scenario %d was stored by another builder; skipped", scenario_id)
        else:
            new_ids += saved
    return new_ids


def run_build(
    settings: Settings,
    store: Store,
    model: TargetModel,
    embed: Embedder,
    request: BuildRequest,
    *,
    embedder: str,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_failures_listed: int = 20,
    run_model: Callable[..., Any] = run_here,
) -> BuildReport:
    """Build (or resume) an atlas. Per-scenario failures are counted and reported, not fatal.
    `run_model(fn, *args)` runs each batch's model work (a job passes `ctx.run_model`, which is the
    worker's model thread)."""
    started = time.perf_counter()
    report = BuildReport()
    by_id, stats = mine_and_save(settings, store, model, request)
    report.scenarios, report.mining = len(by_id), stats.to_dict()
    report.phases["mine_s"] = round(time.perf_counter() - started, 3)
    todo = scenarios_without_inference(store, model.info.name, list(by_id))
    report.already_done = report.scenarios - len(todo)
    total = report.scenarios
    done = report.already_done
    if progress:
        progress(done, total, f"{len(todo)} scenarios to run ({report.already_done} already done)")
    for start in range(0, len(todo), request.batch_size):
        if should_stop is not None and should_stop():
            report.cancelled = True
            break
        batch_ids = todo[start : start + request.batch_size]
        batch = [(i, by_id[i]) for i in batch_ids]
        items, failures = run_model(process_resilient, model, embed, batch, settings)
        for scenario_id, message in failures:
            report.failed += 1
            if len(report.failures) < max_failures_listed:
                report.failures.append(f"scenario {scenario_id}: {message}")
        new_ids = write_processed(store, model, items, embedder)
        report.processed += len(items)
        report.head_patterns += len(new_ids)
        report.new_pattern_ids += new_ids
        done += len(batch_ids)
        if progress:
            progress(done, total, f"{report.processed} run, {report.failed} failed")
    report.seconds = time.perf_counter() - started
    report.phases["run_s"] = round(report.seconds - report.phases["mine_s"], 3)
    return report


def process_resilient(
    model: TargetModel, embed: Embedder, batch: list[tuple[int, Scenario]], settings: Settings
) -> tuple[list[tuple[int, ProcessedInference]], list[tuple[int, str]]]:
    """Process a batch, falling back to one scenario at a time.

    If the batch fails, its scenarios are processed one by one so one bad scenario costs only itself."""
    size = settings.atlas.thumbnail_size
    try:
        results = process_batch(model, embed, [s for _, s in batch], thumbnail_size=size)
        return list(zip([i for i, _ in batch], results, strict=True)), []
    except (AttnLensError, RuntimeError, ValueError) as exc:
        if len(batch) == 1:
            return [], [(batch[0][0], _describe(exc))]
        log.warning("batch failed (%s); retrying its %d scenarios one by one", _describe(exc), len(batch))
    items, failures = [], []
    for entry in batch:
        good, bad = process_resilient(model, embed, [entry], settings)
        items += good
        failures += bad
    return items, failures


def _describe(exc: Exception) -> str:
    message = exc.message if isinstance(exc, AttnLensError) else str(exc)
    return f"{type(exc).__name__}: {message}"[:500]
