"""Analyze pasted Java: make a hole (a selected span, a cursor and a task, or auto-picked per task), run the
model, embed every head, store it as an inference (shareable by id), and predict correctness.

Pasted code is usually shorter than an atlas window: prompts here take up to `context_tokens` tokens and
may be shorter; AP-MAE zero-pads such patterns to its input size (as the reference code does for short
inputs). Offsets in requests count Unicode code points of `code` (Python string indices).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from attnlens.atlas.patterns import pattern_stats, thumbnails
from attnlens.errors import BinaryInput, EmptyInput, InputTooLarge, InvalidHole, NotJava
from attnlens.heads import HeadRef
from attnlens.mining.java import Span, shared_parser
from attnlens.mining.tasks import TASKS
from attnlens.mining.tokens import TokenTable, tokenize_file
from attnlens.mining.windows import FIM_MARKERS, align_hole

if TYPE_CHECKING:
    from attnlens.apmae import APMAE
    from attnlens.model import TargetModel

# More of the code than this failing to parse means it is not Java (or not a fragment tree-sitter can read).
MAX_ERROR_FRACTION = 0.3
MAX_AUTO_TASKS = 4
SPAN_TASKS = tuple(t for t in TASKS if t not in ("random", "noise"))


@dataclass(frozen=True)
class PastedScenario:
    """One hole in pasted code, ready for the model."""

    task: str | None
    node_type: str
    hole_start: int  # bytes
    hole_end: int
    target_text: str
    target_ids: list[int]
    prompt_ids: list[int]
    mode: str
    n_prefix_tokens: int


def check_code(code: str, max_bytes: int) -> bytes:
    """The UTF-8 bytes of `code`, or the error that says what is wrong with it."""
    if not code.strip():
        raise EmptyInput("the code is empty; paste some Java.")
    source = code.encode("utf-8", errors="strict")
    if len(source) > max_bytes:
        raise InputTooLarge(f"the code is {len(source):,} bytes; at most {max_bytes:,} are accepted.")
    if "\x00" in code:
        raise BinaryInput("the code contains NUL bytes; paste Java source text, not a binary file.")
    return source


def parse_java(source: bytes):  # -> ParsedJava
    parsed = shared_parser().parse(source)
    broken = sum(e - s for s, e in zip(parsed.errors.starts, parsed.errors.ends, strict=True))
    meaningful = len(source.strip()) or 1
    if broken / meaningful > MAX_ERROR_FRACTION:
        raise NotJava(
            f"{100 * broken / meaningful:.0f}% of the code does not parse as Java; paste a Java class, method or statements."
        )
    return parsed


def holes_for(code: str, parsed: Any, hole: dict[str, Any] | None, tasks: list[str] | None) -> list[tuple[str | None, Span]]:
    """The requested holes as byte spans: a selection, the next span of a task after a cursor, or one span
    per task picked automatically (the last one, so left-to-right prompts get the most context)."""
    to_byte = lambda i: len(code[:i].encode("utf-8"))  # noqa: E731
    if hole is not None and "start" in hole:
        start, end = int(hole["start"]), int(hole.get("end", -1))
        if not 0 <= start < end <= len(code):
            raise InvalidHole(f"the selection [{start}, {end}) must be non-empty and inside the code (0..{len(code)}).")
        if not code[start:end].strip():
            raise InvalidHole("the selection is only white space; select the code the model should complete.")
        b0, b1 = to_byte(start), to_byte(end)
        return [(None, Span(b0, b1, parsed.smallest_named_node(b0, b1)))]
    if hole is not None and "cursor" in hole:
        cursor, task = int(hole["cursor"]), str(hole.get("task", ""))
        if task not in SPAN_TASKS:
            raise InvalidHole(f"task {task!r} cannot be placed at a cursor; choose one of {', '.join(SPAN_TASKS)}.")
        if not 0 <= cursor <= len(code):
            raise InvalidHole(f"the cursor {cursor} is outside the code (0..{len(code)}).")
        after = [s for s in parsed.spans.get(task, []) if s.start >= to_byte(cursor)]
        if not after:
            raise InvalidHole(f"no {task} target at or after the cursor; move the cursor or pick another task.")
        return [(task, after[0])]
    chosen = tasks or ["identifiers"]
    if len(chosen) > MAX_AUTO_TASKS:
        raise InvalidHole(f"at most {MAX_AUTO_TASKS} tasks per request.")
    out = []
    for task in chosen:
        if task not in SPAN_TASKS:
            raise InvalidHole(f"unknown task {task!r}; choose from {', '.join(SPAN_TASKS)}.")
        spans = parsed.spans.get(task, [])
        if spans:
            out.append((task, spans[-1]))
    if not out:
        raise InvalidHole(f"the code has no target for {', '.join(chosen)}; pick another task or select a span.")
    return out


def build_scenario(model: TargetModel, table: TokenTable, code: str, source: bytes, task: str | None, span: Span, context: int) -> PastedScenario:
    """Align the hole to token boundaries and build a prompt of at most `context` tokens."""
    tokens = tokenize_file(table, code, source)
    if isinstance(tokens, str):
        raise InvalidHole(f"the code cannot be tokenized faithfully ({tokens}); remove special-token text such as <|endoftext|>.")
    hole = align_hole(tokens, span.start, span.end)
    ids = tokens.ids.tolist()
    target_ids = ids[hole.first : hole.last + 1]
    fim = model.info.fim
    if fim is None:
        prefix = ids[max(0, hole.first - context) : hole.first]
        if not prefix:
            raise InvalidHole("there is no code before the hole; this model completes left to right.")
        prompt, mode, n_prefix = prefix, "l2r", len(prefix)
    else:
        budget = context - FIM_MARKERS
        n_suffix_have = len(ids) - hole.last - 1
        n_prefix = min(hole.first, max((budget + 1) // 2, budget - n_suffix_have))
        n_suffix = min(n_suffix_have, budget - n_prefix)
        prefix = ids[hole.first - n_prefix : hole.first]
        suffix = ids[hole.last + 1 : hole.last + 1 + n_suffix]
        prompt, mode = [fim.prefix, *prefix, fim.suffix, *suffix, fim.middle], "fim"
    return PastedScenario(
        task=task,
        node_type=span.node_type,
        hole_start=hole.start,
        hole_end=hole.end,
        target_text=source[hole.start : hole.end].decode("utf-8", errors="replace"),
        target_ids=target_ids,
        prompt_ids=prompt,
        mode=mode,
        n_prefix_tokens=n_prefix,
    )


def task_of_selection(parsed: Any, span: Span) -> str:
    """The task whose target is exactly this span; else `random` (the task of arbitrary spans)."""
    for task in SPAN_TASKS:
        if any(s.start == span.start and s.end == span.end for s in parsed.spans.get(task, [])):
            return task
    return "random"


def run_pasted(model: TargetModel, apmae: APMAE, scenario: PastedScenario, thumbnail_size: int) -> dict[str, Any]:
    """Model + AP-MAE on one pasted scenario: completion, correctness and per-head rows to store."""
    capture = model.capture([scenario.prompt_ids], continue_tokens=[max(len(scenario.target_ids), 1)])
    n_layers, n_heads = model.info.n_layers, model.info.n_heads
    pattern = capture.pattern(0)
    heads = pattern.reshape(n_layers * n_heads, *pattern.shape[-2:])
    completion = capture.continuations[0]
    logits = capture.last_logits[0]
    return {
        "completion_ids": completion,
        "completion_text": model.decode(completion),
        "first_token_correct": completion[:1] == scenario.target_ids[:1],
        "span_correct": completion == scenario.target_ids,
        "expected_token_prob": float(torch.softmax(logits.double(), -1)[scenario.target_ids[0]]),
        "embeddings": apmae.embed(heads.float()).float().cpu().numpy(),  # short patterns are zero-padded inside
        "thumbnails": thumbnails(heads, thumbnail_size),
        "stats": pattern_stats(heads),
        "heads": [HeadRef(layer, h) for layer in range(n_layers) for h in range(n_heads)],
    }


def analyze_code(
    worker: Any, code: str, hole: dict[str, Any] | None, tasks: list[str] | None
) -> list[dict[str, Any]]:
    """The whole flow for the worker: validate, make holes, run, store (as corpus `pasted`), index.
    Returns one dict per hole: inference id, correctness, completion, embeddings for prediction."""
    import hashlib

    import numpy as np
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from attnlens.atlas.indexing import sync_index
    from attnlens.mining import Scenario
    from attnlens.store import save_scenarios
    from attnlens.store.models import Inference
    from attnlens.store.patterns import save_head_patterns, save_inference

    settings, store = worker.settings, worker.store
    source = check_code(code, settings.api.max_code_bytes)
    parsed = parse_java(source)
    model, apmae = worker.model, worker.apmae
    table = worker.token_table()
    context = min(settings.mining.context_tokens, apmae.config.source_length)
    sha = hashlib.sha256(source).hexdigest()
    results = []
    from attnlens.atlas.prediction import predict_for_inference

    for task, span in holes_for(code, parsed, hole, tasks):
        pasted = build_scenario(model, table, code, source, task, span, context)
        predict_task = task or task_of_selection(parsed, span)
        scenario = Scenario(
            corpus="pasted", file_path=f"pasted/{sha[:12]}.java", file_sha256=sha, task=task or "selection",
            node_type=pasted.node_type, hole_start=pasted.hole_start, hole_end=pasted.hole_end,
            target_text=pasted.target_text, target_ids=pasted.target_ids, prompt_ids=pasted.prompt_ids,
            mode=pasted.mode, context_tokens=len(pasted.prompt_ids), n_prefix_tokens=pasted.n_prefix_tokens,
            n_suffix_tokens=max(0, len(pasted.prompt_ids) - pasted.n_prefix_tokens - (FIM_MARKERS if pasted.mode == "fim" else 0)),
            seed=0, alignment="pasted", file_n_bytes=len(source),
        )  # fmt: skip
        with store.session() as session:
            (scenario_id,) = save_scenarios(session, [scenario], model_name=model.info.name)
            existing = session.scalar(
                select(Inference.id).where(Inference.scenario_id == scenario_id, Inference.model_name == model.info.name)
            )
        with worker.gate.slot():
            run = worker.run_model(run_pasted, model, apmae, pasted, settings.atlas.thumbnail_size)
        if existing is None:
            try:
                with store.session(immediate=True) as session:
                    existing = save_inference(
                        session, model_name=model.info.name, scenario_id=scenario_id, prompt_text=code,
                        completion_text=run["completion_text"], completion_ids=run["completion_ids"],
                        first_token_correct=run["first_token_correct"], span_correct=run["span_correct"],
                        expected_token_prob=run["expected_token_prob"], embedder=worker.embedder_name,
                    )  # fmt: skip
                    save_head_patterns(session, existing, run["heads"], run["embeddings"], run["thumbnails"], run["stats"])
            except IntegrityError:  # the same paste, analysed concurrently
                with store.session() as session:
                    existing = session.scalar(
                        select(Inference.id).where(Inference.scenario_id == scenario_id, Inference.model_name == model.info.name)
                    )
            sync_index(settings, store)
        by_head = {ref.name: run["embeddings"][i] for i, ref in enumerate(run["heads"])}
        prediction, reason = predict_for_inference(settings, store, by_head, predict_task)
        results.append(
            {
                "prediction": prediction,
                "prediction_unavailable": reason,
                "predicted_with_task": predict_task,
                "inference_id": int(existing),
                "task": task,
                "target_text": pasted.target_text,
                "completion_text": run["completion_text"],
                "first_token_correct": run["first_token_correct"],
                "span_correct": run["span_correct"],
                "expected_token_prob": run["expected_token_prob"],
                "embeddings": np.asarray(run["embeddings"]),
            }
        )
    return results
