"""Which holes pasted Java gets, without running a model: the checks on the code (`check_code`,
`parse_java`), the hole a selection, a cursor and a task, or an automatic pick per task makes (`holes_for`),
and that hole widened to the model's token boundaries (`token_hole`).

`attnlens.atlas.paste.analyze_code` (a run) and `preview_holes` (POST /api/analyze/holes, a preview) both
call these very functions, so a preview cannot name another hole than the run then completes. Nothing here
needs the model's weights: tree-sitter picks the span, and the model's token table (when it is at hand)
widens it. Offsets in requests and in `PreviewedHole` count Unicode code points of `code`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from attnlens.contracts.results import HoleRequest, PreviewedHole
from attnlens.contracts.tasks import AUTO_TASKS, CURSOR_TASKS
from attnlens.errors import BinaryInput, EmptyInput, InputTooLarge, InvalidHole, NotJava
from attnlens.mining.java import ParsedJava, Span, shared_parser
from attnlens.mining.tokens import FileTokens, is_char_boundary, tokenize_file
from attnlens.mining.windows import Hole, align_hole

if TYPE_CHECKING:
    from attnlens.mining.tokens import TokenTable

# More of the code than this failing to parse means it is not Java (or not a fragment tree-sitter can read).
MAX_ERROR_FRACTION = 0.3
MAX_AUTO_TASKS = 4
NO_PREFIX = "there is no code before the hole; this model completes left to right."
# The process shares one tree-sitter parser (`shared_parser`), which is not thread-safe; pastes and
# previews are parsed on request threads, one at a time.
_PARSE_LOCK = threading.Lock()


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


def parse_java(source: bytes) -> ParsedJava:
    with _PARSE_LOCK:
        parsed = shared_parser().parse(source)
    broken = sum(e - s for s, e in zip(parsed.errors.starts, parsed.errors.ends, strict=True))
    meaningful = len(source.strip()) or 1
    if broken / meaningful > MAX_ERROR_FRACTION:
        raise NotJava(
            f"{100 * broken / meaningful:.0f}% of the code does not parse as Java; "
            "paste a Java class, method or statements."
        )
    return parsed


def holes_for(
    code: str, parsed: ParsedJava, hole: HoleRequest | None, tasks: list[str] | None
) -> list[tuple[str | None, Span]]:
    """The requested holes as byte spans: a selection, the next span of a task after a cursor, or one span
    per task picked automatically (the last one, so left-to-right prompts get the most context)."""

    def to_byte(i: int) -> int:
        return len(code[:i].encode("utf-8"))

    if hole is not None and hole.start is not None:
        start, end = hole.start, hole.end if hole.end is not None else -1
        if not 0 <= start < end <= len(code):
            raise InvalidHole(
                f"the selection [{start}, {end}) must be non-empty and inside the code (0..{len(code)})."
            )
        if not code[start:end].strip():
            raise InvalidHole("the selection is only white space; select the code the model should complete.")
        b0, b1 = to_byte(start), to_byte(end)
        return [(None, Span(b0, b1, parsed.smallest_named_node(b0, b1)))]
    if hole is not None and hole.cursor is not None:
        cursor, task = hole.cursor, hole.task or ""
        if task not in CURSOR_TASKS:
            raise InvalidHole(
                f"task {task!r} cannot be placed at a cursor; choose one of {', '.join(CURSOR_TASKS)}."
            )
        if not 0 <= cursor <= len(code):
            raise InvalidHole(f"the cursor {cursor} is outside the code (0..{len(code)}).")
        after = [s for s in parsed.spans.get(task, []) if s.start >= to_byte(cursor)]
        if not after:
            raise InvalidHole(
                f"no {task} target at or after the cursor; move the cursor or pick another task."
            )
        return [(task, after[0])]
    chosen = tasks or ["identifiers"]
    if len(chosen) > MAX_AUTO_TASKS:
        raise InvalidHole(f"at most {MAX_AUTO_TASKS} tasks per request.")
    out: list[tuple[str | None, Span]] = []
    for task in chosen:
        if task not in AUTO_TASKS:
            raise InvalidHole(f"unknown task {task!r}; choose from {', '.join(AUTO_TASKS)}.")
        spans = parsed.spans.get(task, [])
        if spans:
            out.append((task, spans[-1]))
    if not out:
        raise InvalidHole(
            f"the code has no target for {', '.join(chosen)}; pick another task or select a span."
        )
    return out


def token_hole(
    table: TokenTable, code: str, source: bytes, span: Span, *, left_to_right: bool
) -> tuple[FileTokens, Hole]:
    """The code's tokens and the hole `span` becomes: widened to the boundaries of the tokens that hold
    it. Refuses code the tokenizer cannot read faithfully, and a hole with no code before it for a model
    that completes left to right."""
    tokens = tokenize_file(table, code, source)
    if isinstance(tokens, str):
        raise InvalidHole(
            f"the code cannot be tokenized faithfully ({tokens}); "
            "remove special-token text such as <|endoftext|>."
        )
    hole = align_hole(tokens, span.start, span.end)
    if left_to_right and hole.first == 0:
        raise InvalidHole(NO_PREFIX)
    return tokens, hole


def code_points(source: bytes, start: int, end: int) -> tuple[int, int]:
    """Bytes [start, end) of `source` as code points of its text: a cut inside a character (a byte-level
    token can end there) takes in the whole character."""
    first = len(source[:start].decode("utf-8", errors="ignore"))
    last = len(source[:end].decode("utf-8", errors="ignore"))
    return first, last + (0 if is_char_boundary(source, end) else 1)


def preview_holes(
    code: str,
    hole: HoleRequest | None,
    tasks: list[str] | None,
    *,
    max_bytes: int,
    tokens: tuple[TokenTable, bool] | None,
) -> list[PreviewedHole]:
    """The holes `analyze_code` would make for this request, or the error it would raise before running
    the model. `tokens` is the served model's token table and whether it completes left to right; without
    it (the model still loading) each hole is the span tree-sitter picks, not yet widened to tokens."""
    source = check_code(code, max_bytes)
    parsed = parse_java(source)
    out = []
    for task, span in holes_for(code, parsed, hole, tasks):
        target_start, target_end = code_points(source, span.start, span.end)
        start, end = span.start, span.end
        if tokens is not None:
            table, left_to_right = tokens
            _, aligned = token_hole(table, code, source, span, left_to_right=left_to_right)
            start, end = aligned.start, aligned.end
        first, last = code_points(source, start, end)
        out.append(
            PreviewedHole(
                task=task,
                node_type=span.node_type,
                start=first,
                end=last,
                # Decoded as `build_scenario` decodes the scenario's target_text.
                expected_text=source[start:end].decode("utf-8", errors="replace"),
                target_start=target_start,
                target_end=target_end,
            )
        )
    return out
