"""Relations between the tokens of one prompt, as (query, key) position pairs: the masks of the relational
head-type scores (`attnlens.contracts.head_scores`).

Two come from token ids alone (duplicate token, induction); four from a tree-sitter parse of the prompt's
text aligned to its tokens (matching bracket, same identifier, declaration, argument to callee). The text
is the concatenation of the prompt's tokens without the FIM markers (prefix then suffix, as the model reads
them), so the byte offsets of the parse and of the tokens agree by construction, for mined windows,
pasted code and stored inferences alike. A window cut mid-file parses with errors; tree-sitter recovers,
and a bracket whose partner lies outside the window simply has no pair.

Every pair has key < query: a causal head cannot attend ahead, and attention on the query itself is the
`self` score's business. A relation with no pairs does not apply to the input.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, cast

import numpy as np

from attnlens.errors import InvalidInput
from attnlens.mining.tokens import TokenTable

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase
    from tree_sitter import Node

RELATIONS = ("duplicate_token", "induction", "matching_bracket", "same_identifier", "declaration", "callee")

_OPENING = {b"(": b")", b"[": b"]", b"{": b"}"}
_CLOSING = {close: open_ for open_, close in _OPENING.items()}
_IDENTIFIERS = frozenset({"identifier", "type_identifier"})
# Nodes whose `name` field declares that name (Java grammar of tree-sitter-java).
_DECLARING = frozenset(
    {
        "variable_declarator",
        "formal_parameter",
        "catch_formal_parameter",
        "method_declaration",
        "constructor_declaration",
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "annotation_type_declaration",
        "enum_constant",
        "enhanced_for_statement",
        "resource",
    }
)
_CALLS = {"method_invocation": "name", "object_creation_expression": "type"}


@dataclass(frozen=True)
class TokenRelation:
    """Pairs (queries[i], keys[i]) of prompt positions, keys[i] < queries[i], sorted by query."""

    queries: np.ndarray  # (m,) int64
    keys: np.ndarray  # (m,) int64

    @property
    def applies(self) -> bool:
        return len(self.queries) > 0


def _relation(pairs: set[tuple[int, int]]) -> TokenRelation:
    ordered = sorted((q, k) for q, k in pairs if k < q)
    array = np.asarray(ordered, dtype=np.int64).reshape(-1, 2)
    return TokenRelation(queries=array[:, 0].copy(), keys=array[:, 1].copy())


def id_relations(ids: Sequence[int], markers: frozenset[int]) -> dict[str, TokenRelation]:
    """Duplicate-token and induction pairs from token ids (marker positions take part in neither)."""
    duplicate: set[tuple[int, int]] = set()
    induction: set[tuple[int, int]] = set()
    seen: dict[int, list[int]] = defaultdict(list)
    for q, token in enumerate(ids):
        if token in markers:
            continue
        for j in seen[token]:
            duplicate.add((q, j))
            if j + 1 < q and ids[j + 1] not in markers:
                induction.add((q, j + 1))
        seen[token].append(q)
    return {"duplicate_token": _relation(duplicate), "induction": _relation(induction)}


class _Aligned:
    """The prompt's text tokens laid end to end: byte span -> prompt positions."""

    def __init__(self, token_bytes: Sequence[bytes], text_positions: Sequence[int]) -> None:
        self.positions = np.asarray(text_positions, dtype=np.int64)
        lengths = np.asarray([len(token_bytes[p]) for p in text_positions], dtype=np.int64)
        text = b"".join(token_bytes[p] for p in text_positions)
        # A window often starts inside a block comment (a licence header, a Javadoc): its prose would
        # parse as code (`the` declared, brackets matched in sentences). A `*/` before any `/*` says so;
        # the parse then reads the text behind an opening `/*` that no token stands for.
        close, open_ = text.find(b"*/"), text.find(b"/*")
        lead = b"/*" if close >= 0 and (open_ < 0 or close < open_) else b""
        self.text = lead + text
        # Token i covers bytes [starts[i], starts[i+1]) of `text`.
        self.starts = len(lead) + np.concatenate([[0], np.cumsum(lengths)])

    def tokens(self, start: int, end: int) -> list[int]:
        """Prompt positions of the tokens overlapping bytes [start, end)."""
        if end <= start:
            return []
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        last = int(np.searchsorted(self.starts, end, side="left")) - 1
        return self.positions[max(first, 0) : last + 1].tolist()

    def token_at(self, byte: int) -> int:
        return self.tokens(byte, byte + 1)[0]


def _walk(root: Node) -> Iterator[Node]:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _declared_name(node: Node) -> Node | None:
    if node.type in _DECLARING:
        return node.child_by_field_name("name")
    if node.type == "type_parameter":
        return next((c for c in node.children if c.type == "type_identifier"), None)
    if node.type == "lambda_expression":
        params = node.child_by_field_name("parameters")
        return params if params is not None and params.type == "identifier" else None
    if node.type == "inferred_parameters":
        return None  # its identifiers are yielded one by one by `_declarations`
    return None


def _declarations(node: Node) -> list[Node]:
    if node.type == "inferred_parameters":
        return [c for c in node.children if c.type == "identifier"]
    name = _declared_name(node)
    return [name] if name is not None and name.type in _IDENTIFIERS else []


def syntax_relations(aligned: _Aligned, root: Node) -> dict[str, TokenRelation]:
    """Bracket, identifier, declaration and callee pairs from a parse of `aligned.text`."""
    text = aligned.text
    brackets: set[tuple[int, int]] = set()
    occurrences: list[tuple[int, int, bytes, bool]] = []  # (start, end, name, is a declaration)
    declared: set[int] = set()  # start bytes of declaring identifiers
    calls: list[tuple[int, Node, Node]] = []  # (depth, name node, argument list)
    depth_of: dict[int, int] = {root.id: 0}
    for node in _walk(root):
        depth = depth_of.get(node.id, 0)
        for child in node.children:
            depth_of[child.id] = depth + 1
        for name in _declarations(node):
            declared.add(name.start_byte)
        if node.type in _IDENTIFIERS and not node.is_missing and node.end_byte > node.start_byte:
            occurrences.append((node.start_byte, node.end_byte, text[node.start_byte : node.end_byte], False))
        if node.type in _CALLS:
            name_node = node.child_by_field_name(_CALLS[node.type])
            arguments = node.child_by_field_name("arguments")
            if name_node is not None and arguments is not None:
                calls.append((depth, name_node, arguments))
        # Partners are children of one node: `(` ... `)` of an argument list, `{` ... `}` of a block.
        open_stack: list[Node] = []
        for child in node.children:
            if child.is_missing or child.end_byte <= child.start_byte:
                continue
            spelling = text[child.start_byte : child.end_byte]
            if spelling in _OPENING:
                open_stack.append(child)
            elif spelling in _CLOSING and open_stack:
                opening = open_stack.pop()
                if text[opening.start_byte : opening.end_byte] == _CLOSING[spelling]:
                    brackets.add((aligned.token_at(child.start_byte), aligned.token_at(opening.start_byte)))
    occurrences = sorted({(s, e, n, s in declared) for s, e, n, _ in occurrences})
    return {
        "matching_bracket": _relation(brackets),
        **_identifier_relations(aligned, occurrences),
        "callee": _relation(_callee_pairs(aligned, calls)),
    }


def _identifier_relations(
    aligned: _Aligned, occurrences: list[tuple[int, int, bytes, bool]]
) -> dict[str, TokenRelation]:
    same: set[tuple[int, int]] = set()
    declaration: set[tuple[int, int]] = set()
    earlier: dict[bytes, list[list[int]]] = defaultdict(list)  # name -> tokens of each earlier occurrence
    last_declaration: dict[bytes, list[int]] = {}
    for start, end, name, is_declaration in occurrences:
        tokens = aligned.tokens(start, end)
        query = tokens[-1]  # where the model has read the whole name
        own = set(tokens)
        for previous in earlier[name]:
            same.update((query, k) for k in previous if k not in own)
        if not is_declaration and name in last_declaration:
            declaration.update((query, k) for k in last_declaration[name] if k not in own)
        earlier[name].append(tokens)
        if is_declaration:
            last_declaration[name] = tokens  # the nearest earlier declaration shadows older ones
    return {"same_identifier": _relation(same), "declaration": _relation(declaration)}


def _callee_pairs(aligned: _Aligned, calls: list[tuple[int, Node, Node]]) -> set[tuple[int, int]]:
    # Outer calls first, so that a token inside a nested call ends up paired with the innermost callee.
    callee_of: dict[int, list[int]] = {}
    for _, name_node, arguments in sorted(calls, key=lambda c: c[0]):
        name_tokens = aligned.tokens(name_node.start_byte, name_node.end_byte)
        # Tokens after the opening parenthesis, up to and including the closing one.
        for position in aligned.tokens(arguments.start_byte + 1, arguments.end_byte):
            if position not in name_tokens:
                callee_of[position] = name_tokens
    return {(q, k) for q, keys in callee_of.items() for k in keys}


def token_relations(
    ids: Sequence[int], token_bytes: Sequence[bytes], markers: frozenset[int]
) -> dict[str, TokenRelation]:
    """All relations of one prompt: `ids` its token ids, `token_bytes[i]` the bytes token i stands for,
    `markers` the ids that are not source text (FIM markers, special tokens)."""
    from attnlens.mining.java import shared_parser

    relations = id_relations(ids, markers)
    text_positions = [p for p, token in enumerate(ids) if token not in markers]
    aligned = _Aligned(token_bytes, text_positions)
    tree = shared_parser().parser.parse(aligned.text)
    relations.update(syntax_relations(aligned, tree.root_node))
    return relations


@lru_cache(maxsize=4)
def _table_of(tokenizer: PreTrainedTokenizerBase) -> TokenTable | None:
    try:
        return TokenTable(tokenizer)
    except InvalidInput:
        return None  # not byte-level BPE: fall back on decoding tokens one by one


def prompt_relations(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> dict[str, TokenRelation]:
    """`token_relations` of a prompt, with the tokenizer's bytes and special ids."""
    table = _table_of(tokenizer)
    if table is not None:
        return token_relations(ids, table.token_bytes(ids), table.special_ids)
    pieces = [cast(str, tokenizer.decode([int(i)])).encode("utf-8") for i in ids]
    return token_relations(ids, pieces, frozenset(tokenizer.all_special_ids))
