"""Analyze pasted Java: make a hole (a selected span, a cursor and a task, or auto-picked per task), run it
through the atlas pipeline on a one-scenario batch (`process_batch`, `write_processed`: the same
completion, correctness, embeddings, thumbnails and statistics as a built atlas), store it as a `pasted`
inference (shareable by id; no analysis reads pasted rows, and they can be deleted) or, when asked not to
store it, write nothing and return its grid inline, and predict correctness.

Pasted code is usually shorter than an atlas window: prompts here take up to `context_tokens` tokens and
may be shorter; AP-MAE zero-pads such patterns to its input size (as the reference code does for short
inputs). Offsets in requests count Unicode code points of `code` (Python string indices). The holes
are chosen by `attnlens.atlas.paste_holes`, which POST /api/analyze/holes previews with.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

import numpy as np

from attnlens.atlas.build import write_processed
from attnlens.atlas.indexing import sync_index
from attnlens.atlas.jobs import ModelRuntime
from attnlens.atlas.paste_holes import NO_PREFIX, check_code, holes_for, parse_java, token_hole
from attnlens.atlas.prediction import as_vectors, predict_for_inference
from attnlens.atlas.process import ProcessedInference, process_batch
from attnlens.config import Settings
from attnlens.contracts.head_scores import RELATIONAL_SCORE_NAMES
from attnlens.contracts.results import HoleRequest, PastedGrid, PastedHole
from attnlens.contracts.tasks import CURSOR_TASKS, SELECTION_FALLBACK_TASK
from attnlens.errors import InvalidHole
from attnlens.heads import HeadRef
from attnlens.mining.java import ParsedJava, Span
from attnlens.mining.scenarios import Scenario
from attnlens.mining.tokens import TokenTable
from attnlens.mining.windows import FIM_MARKERS
from attnlens.store import Store, save_scenarios
from attnlens.store.inferences import inference_of_scenario
from attnlens.store.models import PASTED, PASTED_ALIGNMENT, PASTED_CORPUS
from attnlens.store.patterns import STAT_COLUMNS

if TYPE_CHECKING:
    from attnlens.model import TargetModel


def build_scenario(
    model: TargetModel,
    table: TokenTable,
    code: str,
    source: bytes,
    task: str | None,
    span: Span,
    context: int,
) -> Scenario:
    """Align the hole to token boundaries and build a prompt of at most `context` tokens: a scenario of
    the `pasted` corpus, like the ones mining makes (its task is `selection` for a selected span)."""
    fim = model.info.fim
    tokens, hole = token_hole(table, code, source, span, left_to_right=fim is None)
    ids = tokens.ids.tolist()
    target_ids = ids[hole.first : hole.last + 1]
    lead = [] if table.prompt_bos is None else [table.prompt_bos]  # as mining builds prompts
    if fim is None:
        prefix = ids[max(0, hole.first - (context - len(lead))) : hole.first]
        if not prefix:
            raise InvalidHole(NO_PREFIX)
        prompt, mode, n_prefix, n_suffix = [*lead, *prefix], "l2r", len(prefix), 0
    else:
        budget = context - FIM_MARKERS - len(lead)
        n_suffix_have = len(ids) - hole.last - 1
        n_prefix = min(hole.first, max((budget + 1) // 2, budget - n_suffix_have))
        n_suffix = min(n_suffix_have, budget - n_prefix)
        prefix = ids[hole.first - n_prefix : hole.first]
        suffix = ids[hole.last + 1 : hole.last + 1 + n_suffix]
        prompt, mode = [*lead, fim.prefix, *prefix, fim.suffix, *suffix, fim.middle], "fim"
    sha = hashlib.sha256(source).hexdigest()
    return Scenario(
        corpus=PASTED_CORPUS,
        file_path=f"pasted/{sha[:12]}.java",
        file_sha256=sha,
        task=task or "selection",
        node_type=span.node_type,
        hole_start=hole.start,
        hole_end=hole.end,
        target_text=source[hole.start : hole.end].decode("utf-8", errors="replace"),
        target_ids=target_ids,
        prompt_ids=prompt,
        mode=mode,
        context_tokens=len(prompt),
        n_prefix_tokens=n_prefix,
        n_suffix_tokens=n_suffix,
        seed=0,
        alignment=PASTED_ALIGNMENT,
        file_n_bytes=len(source),
    )


def task_of_selection(parsed: ParsedJava, span: Span) -> str:
    """The task whose target is exactly this span; else `random` (the task of arbitrary spans)."""
    for task in CURSOR_TASKS:
        if any(s.start == span.start and s.end == span.end for s in parsed.spans.get(task, [])):
            return task
    return SELECTION_FALLBACK_TASK


def pasted_grid(item: ProcessedInference, n_layers: int, n_heads: int) -> PastedGrid:
    """The head grid of an unstored paste, exactly as its stored rows would give it (thumbnails keep their
    lower triangle, statistics are float64)."""
    images = np.tril(np.asarray(item.thumbnails, dtype=np.uint8))  # (layer*head, size, size)
    return PastedGrid(
        n_layers=n_layers,
        n_heads=n_heads,
        thumbnail_size=int(images.shape[-1]),
        thumbnails=base64.b64encode(np.ascontiguousarray(images).tobytes()).decode("ascii"),
        stats={
            name: [float(v) for v in np.asarray(getattr(item.stats, name), dtype=np.float64).reshape(-1)]
            for name in STAT_COLUMNS
        },
        relational={
            name: None if (column := item.stats.column(name)) is None else [float(v) for v in column]
            for name in RELATIONAL_SCORE_NAMES
        },
        reconstruction_errors=[float(v) for v in item.reconstruction_errors],
    )


def analyze_code(
    settings: Settings,
    store: Store,
    runtime: ModelRuntime,
    table: TokenTable,
    code: str,
    hole: HoleRequest | None,
    tasks: list[str] | None,
    *,
    persist: bool = True,
) -> list[PastedHole]:
    """The whole flow: validate, make holes, run each through the atlas pipeline, store it (source
    `pasted`, corpus `pasted`), index it, and predict correctness. One result per hole. With
    `persist=False` nothing is written (no scenario, no inference, no index entry): each result has no
    inference id and carries its grid."""
    source = check_code(code, settings.api.max_code_bytes)
    parsed = parse_java(source)
    model, apmae = runtime.model, runtime.apmae
    context = min(settings.mining.context_tokens, apmae.config.source_length)
    results = []
    for task, span in holes_for(code, parsed, hole, tasks):
        scenario = build_scenario(model, table, code, source, task, span, context)
        (item,) = runtime.run_model(
            process_batch,
            model,
            apmae.embed_with_errors,
            [scenario],
            thumbnail_size=settings.atlas.thumbnail_size,
        )
        inference_id: int | None = None
        grid: PastedGrid | None = None
        if persist:
            inference_id = _stored(settings, store, model, scenario, item, runtime.embedder_name, code)
        else:
            grid = pasted_grid(item, model.info.n_layers, model.info.n_heads)
        heads = [HeadRef(layer, h) for layer in range(model.info.n_layers) for h in range(model.info.n_heads)]
        vectors = as_vectors(dict(zip(heads, item.embeddings, strict=True)))  # rows in (layer, head) order
        predict_task = task or task_of_selection(parsed, span)
        prediction, reason, placement = predict_for_inference(
            settings, store, model.info.name, vectors, predict_task,
            prompt_tokens=scenario.context_tokens, embedder=runtime.embedder_name,
        )  # fmt: skip
        results.append(
            PastedHole(
                inference_id=inference_id,
                task=task,
                target_text=scenario.target_text,
                completion_text=item.completion_text,
                first_token_correct=item.first_token_correct,
                span_correct=item.span_correct,
                expected_token_prob=item.expected_token_prob,
                predicted_with_task=predict_task,
                prediction=prediction,
                prediction_unavailable=reason,
                clustering_id=placement.clustering_id,
                clusters=placement.clusters,
                grid=grid,
            )
        )
    return results


def _stored(
    settings: Settings,
    store: Store,
    model: TargetModel,
    scenario: Scenario,
    item: ProcessedInference,
    embedder: str,
    code: str,
) -> int:
    """Store one processed hole as a pasted inference (once: the same paste again, or analysed
    concurrently, is written once by the unique key) and index it; returns its inference id."""
    model_name = model.info.name
    # Immediate: save_scenarios reads, then writes; a deferred transaction would fail ("database is
    # locked") when a build commits in between, instead of waiting its turn.
    with store.session(immediate=True) as session:
        (scenario_id,) = save_scenarios(session, [scenario], model_name=model_name)
    existing = inference_of_scenario(store, scenario_id, model_name)
    if existing is None:
        write_processed(store, model, [(scenario_id, item)], embedder, prompt_text=code, source=PASTED)
        sync_index(settings, store)
        existing = inference_of_scenario(store, scenario_id, model_name)
    assert existing is not None  # written just now, by this call or a concurrent one
    return existing
