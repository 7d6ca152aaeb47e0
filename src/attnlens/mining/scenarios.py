"""Turning a stream of Java files into completion scenarios, `per_task` of each task, deterministically.

Sampling (as in the paper, one capture per file): files are taken in the order the corpus reader gives
them (a seeded permutation when mining from the CLI). From each file, every task that still needs
scenarios gets at most one, chosen uniformly at random among that file's usable candidates with a
random generator seeded by (seed, file sha256, task). A task stops taking files once it has `per_task`;
mining stops reading files once every task is full. So the scenarios of one task come from `per_task`
different files, and the same corpus, order and seed always give the same scenarios.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attnlens.contracts.models import split_prompt
from attnlens.errors import InvalidInput
from attnlens.mining.corpus import SourceFile
from attnlens.mining.java import JavaParser, ParsedJava, Span
from attnlens.mining.stats import MiningStats
from attnlens.mining.tasks import QUERY_TASKS, RANDOM_MAX_TOKENS, RANDOM_MIN_TOKENS, STRING_TASKS, TASKS
from attnlens.mining.tokens import FileTokens, TokenTable, tokenize_file
from attnlens.mining.windows import FIM_MARKERS, Hole, align_hole, clean_cuts, fim_window, l2r_window

if TYPE_CHECKING:
    from attnlens.contracts.models import FimTokens

# A hole widened by more than this many bytes on one side no longer says much about its task.
MAX_WIDEN_BYTES = 32
RANDOM_ATTEMPTS = 64


@dataclass(frozen=True)
class Scenario:
    """One completion: a hole in a file, the target that fills it, and the exact prompt the model sees."""

    corpus: str
    file_path: str
    file_sha256: str
    task: str
    node_type: str  # tree-sitter type of the target node (`identifier`, `&&`, `}`...); `noise` for noise
    hole_start: int  # byte offsets in the UTF-8 file; the hole is token-aligned (see `alignment`)
    hole_end: int
    target_text: str
    target_ids: list[int]
    prompt_ids: list[int]  # exactly what the model sees, `context_tokens` long
    mode: str  # "fim" or "l2r"
    context_tokens: int
    n_prefix_tokens: int  # file tokens before the hole in the prompt
    n_suffix_tokens: int  # file tokens after the hole in the prompt (0 for l2r)
    seed: int
    alignment: str  # "exact", "widened:left=L,right=R" (bytes) or "synthetic" (noise)
    file_n_bytes: int | None = None  # size of the UTF-8 file (the store records it with the file)

    @property
    def prefix_ids(self) -> list[int]:
        """The prompt's file tokens before the hole (markers excluded)."""
        return split_prompt(self.prompt_ids, self.mode, self.n_prefix_tokens, self.n_suffix_tokens)[0]

    @property
    def suffix_ids(self) -> list[int]:
        """The prompt's file tokens after the hole (empty for left-to-right)."""
        return split_prompt(self.prompt_ids, self.mode, self.n_prefix_tokens, self.n_suffix_tokens)[1]


def task_rng(seed: int, file_sha256: str, task: str) -> random.Random:
    """A generator that depends only on (seed, file, task): no order effects between files or tasks."""
    digest = hashlib.sha256(f"{seed}:{file_sha256}:{task}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def mine_scenarios(
    files: Iterable[SourceFile],
    *,
    tokenizer,
    fim: FimTokens | None,
    tasks: Sequence[str],
    per_task: int,
    context_tokens: int = 256,
    seed: int = 0,
    stats: MiningStats | None = None,
    max_target_tokens: int = 64,
) -> Iterator[Scenario]:
    """Stream scenarios: FIM prompts when `fim` is given, else left-to-right (see the module docstring).

    Args:
        tokenizer: the target model's tokenizer (byte-level BPE) or a prepared `TokenTable`.
        fim: FIM marker ids (`model.info.fim`); None for left-to-right models.
        tasks: task names from `TASKS`.
        per_task: scenarios wanted per task; mining stops once every task has them.
        context_tokens: prompt length; every prompt is exactly this long.
        max_target_tokens: longer targets (long text blocks, say) are not used.
    """
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise InvalidInput(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}.")
    if per_task < 0:
        raise InvalidInput("per_task must be 0 or more.")
    minimum_context = FIM_MARKERS + 2 if fim is not None else 2
    if context_tokens < minimum_context:
        raise InvalidInput(f"context_tokens must be at least {minimum_context}.")
    stats = stats if stats is not None else MiningStats()
    table = tokenizer if isinstance(tokenizer, TokenTable) else TokenTable(tokenizer)
    miner = _FileMiner(table, fim, context_tokens, seed, max_target_tokens, stats)
    ordered = [task for task in TASKS if task in set(tasks)]
    # Arguments are checked above, when called; the work happens lazily as scenarios are consumed.
    return _stream(files, miner, ordered, per_task, stats)


def _stream(
    files: Iterable[SourceFile], miner: _FileMiner, ordered: list[str], per_task: int, stats: MiningStats
) -> Iterator[Scenario]:
    remaining = dict.fromkeys(ordered, per_task)
    if per_task == 0 or not ordered:
        return
    table, fim, context_tokens = miner.table, miner.fim, miner.context_tokens
    parser = JavaParser()
    for file in files:
        stats.files_mined += 1
        source = file.text.encode("utf-8")
        active = [task for task in ordered if remaining[task] > 0]
        parsed = None
        if any(task in QUERY_TASKS or task == "random" for task in active):
            parsed = parser.parse(source)
            stats.files_with_parse_errors += int(parsed.has_error)
            for task in ordered:  # also for tasks already full, so the counts describe the files read
                if task in QUERY_TASKS:
                    stats.candidates[task] += len(parsed.spans.get(task, ()))
            # Tokenizing costs more than parsing: skip it when no task still open can use this file
            # (late in a run only rare tasks are open, and most files have none of their spans).
            if not any(task in ("random", "noise") or parsed.spans.get(task) for task in active):
                continue
        tokens = tokenize_file(table, file.text, source)
        if isinstance(tokens, str):
            stats.skip(tokens)
            continue
        # Smallest file with one usable hole: a full prompt plus a one-token target.
        if tokens.n < context_tokens - (FIM_MARKERS if fim is not None else 0) + 1:
            stats.skip("too_short")
            continue
        if "random" in ordered:
            stats.candidates["random"] += max(0, tokens.n - RANDOM_MIN_TOKENS + 1)
        if "noise" in ordered:
            stats.candidates["noise"] += 1
        for task in ordered:
            if remaining[task] == 0:
                continue
            scenario = miner.mine(file, source, tokens, parsed, task)
            if scenario is None:
                continue
            remaining[task] -= 1
            stats.scenarios[task] += 1
            stats.target_tokens[task] += len(scenario.target_ids)
            yield scenario
        if not any(remaining.values()):
            return


class _FileMiner:
    """Makes at most one scenario of one task from one file."""

    def __init__(
        self,
        table: TokenTable,
        fim: FimTokens | None,
        context_tokens: int,
        seed: int,
        max_target_tokens: int,
        stats: MiningStats,
    ) -> None:
        self.table = table
        self.fim = fim
        self.context_tokens = context_tokens
        self.seed = seed
        self.max_target_tokens = max_target_tokens
        self.stats = stats
        self.mode = "fim" if fim is not None else "l2r"

    def mine(
        self, file: SourceFile, source: bytes, tokens: FileTokens, parsed: ParsedJava | None, task: str
    ) -> Scenario | None:
        rng = task_rng(self.seed, file.sha256, task)
        if task == "noise":
            return self._noise(file, len(source), rng)
        if task == "random":
            return self._random(file, source, tokens, parsed, rng)
        spans = (parsed.spans if parsed is not None else {}).get(task, [])
        order = list(range(len(spans)))
        rng.shuffle(order)
        for index in order:
            span = spans[index]
            hole = align_hole(tokens, span.start, span.end)
            made = self._build(file, source, tokens, parsed, task, span, hole)
            if isinstance(made, Scenario):
                return made
            self.stats.rejected[made] += 1
        return None

    def _random(
        self,
        file: SourceFile,
        source: bytes,
        tokens: FileTokens,
        parsed: ParsedJava | None,
        rng: random.Random,
    ) -> Scenario | None:
        # Left-to-right holes need a full prompt before them; FIM holes can sit anywhere.
        lowest = self.context_tokens if self.fim is None else 0
        for _ in range(RANDOM_ATTEMPTS):
            length = rng.randint(RANDOM_MIN_TOKENS, RANDOM_MAX_TOKENS)
            if tokens.n - length < lowest:
                return None
            first = rng.randint(lowest, tokens.n - length)
            start, end = int(tokens.starts[first]), int(tokens.starts[first + length])
            node_type = parsed.smallest_named_node(start, end) if parsed is not None else "program"
            hole = Hole(first, first + length - 1, start, end, "exact")
            made = self._build(file, source, tokens, parsed, "random", Span(start, end, node_type), hole)
            if isinstance(made, Scenario):
                return made
            self.stats.rejected[made] += 1
        return None

    def _build(
        self,
        file: SourceFile,
        source: bytes,
        tokens: FileTokens,
        parsed: ParsedJava | None,
        task: str,
        span: Span,
        hole: Hole,
    ) -> Scenario | str:
        """The scenario for this hole, or the reason it cannot be one."""
        if span.start - hole.start > MAX_WIDEN_BYTES or hole.end - span.end > MAX_WIDEN_BYTES:
            return "alignment_too_wide"
        if parsed is not None:
            # What alignment added to the node (and all of a random span) must be code, not comment or
            # string text: the targets of operator and bracket tasks must never lie in either.
            if task == "random":
                added = [(hole.start, hole.end)]
            else:
                added = [(hole.start, span.start), (span.end, hole.end)]
            for start, end in added:
                if parsed.comments.overlaps(start, end):
                    return "touches_comment"
                if parsed.strings.overlaps(start, end) and (task == "random" or task not in STRING_TASKS):
                    return "touches_string"
                if parsed.errors.overlaps(start, end):
                    return "touches_parse_error"
        n_target = hole.last - hole.first + 1
        if n_target > self.max_target_tokens:
            return "target_too_long"
        if self.fim is not None:
            window = fim_window(tokens, hole, self.context_tokens, self.fim, self.table.prompt_bos)
        else:
            window = l2r_window(tokens, hole, self.context_tokens, self.table.prompt_bos)
        if window is None:
            return "window_does_not_fit"
        if not clean_cuts(source, window.start, hole.start, hole.end, window.end):
            return "cut_splits_character"
        target_text = source[hole.start : hole.end].decode("utf-8")
        target_ids = self.table.encode(target_text)
        if target_ids != tokens.ids[hole.first : hole.last + 1].tolist():
            # Tokenized alone the target would differ from what the file's tokenization puts there.
            return "target_tokenizes_differently"
        return Scenario(
            corpus=file.corpus,
            file_path=file.path,
            file_sha256=file.sha256,
            task=task,
            node_type=span.node_type,
            hole_start=hole.start,
            hole_end=hole.end,
            target_text=target_text,
            target_ids=target_ids,
            prompt_ids=window.prompt_ids,
            mode=self.mode,
            context_tokens=self.context_tokens,
            n_prefix_tokens=window.n_prefix_tokens,
            n_suffix_tokens=window.n_suffix_tokens,
            seed=self.seed,
            alignment=hole.alignment,
            file_n_bytes=len(source),
        )

    def _noise(self, file: SourceFile, n_bytes: int, rng: random.Random) -> Scenario:
        """Random vocabulary tokens framed like a real prompt; the `noise` control task."""
        pool = self.table.ordinary_ids

        def draw(count: int) -> list[int]:
            return [int(pool[rng.randrange(len(pool))]) for _ in range(count)]

        lead = [] if self.table.prompt_bos is None else [self.table.prompt_bos]
        if self.fim is not None:
            budget = self.context_tokens - FIM_MARKERS - len(lead)
            n_prefix = rng.randint(1, budget - 1)  # <fim_suffix> at a random interior position
            n_suffix = budget - n_prefix
            f = self.fim
            prompt = [*lead, f.prefix, *draw(n_prefix), f.suffix, *draw(n_suffix), f.middle]
        else:
            n_prefix, n_suffix = self.context_tokens - len(lead), 0
            prompt = [*lead, *draw(n_prefix)]
        target_ids = draw(1)
        return Scenario(
            corpus=file.corpus,
            file_path=file.path,
            file_sha256=file.sha256,
            task="noise",
            node_type="noise",
            hole_start=0,
            hole_end=0,
            target_text=self.table.decode(target_ids),
            target_ids=target_ids,
            prompt_ids=prompt,
            mode=self.mode,
            context_tokens=self.context_tokens,
            n_prefix_tokens=n_prefix,
            n_suffix_tokens=n_suffix,
            seed=self.seed,
            alignment="synthetic",
            file_n_bytes=n_bytes,
        )
