"""Parsing Java with tree-sitter and listing every candidate target span of every task in one pass."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from attnlens.mining.tasks import EOL_EXCLUDED_PARENTS, JAVA_TASK_QUERY, JAVA_TEXT_QUERY

if TYPE_CHECKING:  # tree_sitter is a worker dependency, imported lazily at run time
    from tree_sitter import Tree


@dataclass(frozen=True)
class Span:
    """A candidate target: bytes [start, end) of the UTF-8 source and the tree-sitter node type."""

    start: int
    end: int
    node_type: str


class RangeSet:
    """Sorted, non-overlapping byte ranges with a fast 'does [a, b) touch any?' test."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self.starts = [r[0] for r in merged]
        self.ends = [r[1] for r in merged]

    def overlaps(self, start: int, end: int) -> bool:
        if start >= end:
            return False
        # The last range starting before `end` is the only one that can reach into [start, end).
        index = bisect.bisect_left(self.starts, end) - 1
        return index >= 0 and self.ends[index] > start

    def __len__(self) -> int:
        return len(self.starts)


@dataclass
class ParsedJava:
    """What mining needs from one file's syntax tree; the tree itself is dropped right away."""

    spans: dict[str, list[Span]]  # task -> candidates in source order
    comments: RangeSet
    strings: RangeSet
    errors: RangeSet  # ERROR subtrees: the parser could not make sense of these bytes
    has_error: bool
    tree: Tree  # kept only while its file is being mined

    def smallest_named_node(self, start: int, end: int) -> str:
        """Type of the smallest named node covering bytes [start, end) (for `random` spans)."""
        node = self.tree.root_node.named_descendant_for_byte_range(start, max(start, end - 1))
        return node.type if node is not None else "program"


class JavaParser:
    """A tree-sitter Java parser and its two compiled queries (compiling a query takes milliseconds;
    build one parser per mining run, not per file)."""

    def __init__(self) -> None:
        import tree_sitter_java
        from tree_sitter import Language, Parser, Query

        self.language = Language(tree_sitter_java.language())
        self.parser = Parser(self.language)
        self.task_query = Query(self.language, JAVA_TASK_QUERY)
        self.text_query = Query(self.language, JAVA_TEXT_QUERY)

    def parse(self, source: bytes) -> ParsedJava:
        from tree_sitter import QueryCursor

        tree = self.parser.parse(source)
        root = tree.root_node
        texts = QueryCursor(self.text_query).captures(root)
        ranges = {name: [(n.start_byte, n.end_byte) for n in nodes] for name, nodes in texts.items()}
        errors = RangeSet(ranges.get("error", []))
        captures = QueryCursor(self.task_query).captures(root)
        spans: dict[str, list[Span]] = {}
        for task, nodes in captures.items():
            found = []
            for node in nodes:
                # MISSING nodes are zero-width inventions of error recovery, not source text.
                if node.is_missing or node.end_byte <= node.start_byte:
                    continue
                if errors.overlaps(node.start_byte, node.end_byte):
                    continue
                span = (
                    _eol_span(node, source)
                    if task == "eol"
                    else Span(node.start_byte, node.end_byte, node.type)
                )
                if span is not None:
                    found.append(span)
            found.sort(key=lambda s: (s.start, s.end))
            spans[task] = found
        return ParsedJava(
            spans=spans,
            comments=RangeSet(ranges.get("comment", [])),
            strings=RangeSet(ranges.get("string", [])),
            errors=errors,
            has_error=root.has_error,
            tree=tree,
        )


def _eol_span(semicolon, source: bytes) -> Span | None:
    """`;` plus the newline right after it, when the `;` ends a statement or declaration."""
    parent = semicolon.parent
    if parent is None or parent.type in EOL_EXCLUDED_PARENTS:
        return None
    grandparent = parent.parent
    if (
        parent.type == "local_variable_declaration"
        and grandparent is not None
        and grandparent.type == "for_statement"
    ):
        return None
    end = semicolon.end_byte
    if source[end : end + 1] == b"\n":
        return Span(semicolon.start_byte, end + 1, ";")
    if source[end : end + 2] == b"\r\n":
        return Span(semicolon.start_byte, end + 2, ";")
    return None


@lru_cache(maxsize=1)
def shared_parser() -> JavaParser:
    """One parser per process (tree-sitter parsers are not thread-safe; mining is single-threaded)."""
    return JavaParser()
