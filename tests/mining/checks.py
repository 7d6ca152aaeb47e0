"""What every mined scenario must satisfy, checked independently of the mining code's own bookkeeping."""

from __future__ import annotations

from attnlens.mining import Scenario, TokenTable
from attnlens.model.target import FimTokens

OPERATOR_TOKENS = {
    "boolean_operators": {"&&", "||", "!", "==", "!="},
    "mathematical_operators": {"+", "-", "*", "/", "%", "++", "--", "<", ">", "<=", ">="},
    "assignment_operators": {"+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", ">>>="},
    "closing_bracket": {"}", ")", "]"},
    "eol": {";"},
}
COMMENT_AND_STRING_TYPES = {"line_comment", "block_comment", "string_literal", "character_literal"}


def comment_and_string_ranges(source: bytes) -> list[tuple[int, int, str]]:
    """Every comment and string/char literal, found by walking the whole tree (not by the miner's query)."""
    import tree_sitter_java
    from tree_sitter import Language, Parser

    tree = Parser(Language(tree_sitter_java.language())).parse(source)
    found, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in COMMENT_AND_STRING_TYPES:
            found.append((node.start_byte, node.end_byte, node.type))
            continue
        stack.extend(node.children)
    return found


def check_scenario(scenario: Scenario, source: bytes, table: TokenTable, fim: FimTokens | None) -> None:
    """Window length and framing; window text equals the source around the hole; target equals the
    source bytes at the hole; no non-string target touches a comment or a string."""
    n = scenario.context_tokens
    assert len(scenario.prompt_ids) == n
    # A model trained with a BOS gets it first in every prompt, inside the window's length.
    lead = [] if table.prompt_bos is None else [table.prompt_bos]
    assert scenario.prompt_ids[: len(lead)] == lead
    prompt = scenario.prompt_ids[len(lead) :]
    n -= len(lead)
    if fim is not None:
        assert scenario.mode == "fim"
        assert prompt[0] == fim.prefix and prompt[-1] == fim.middle
        assert prompt[1 + scenario.n_prefix_tokens] == fim.suffix
        for marker in (fim.prefix, fim.middle, fim.suffix):
            assert prompt.count(marker) == 1
        assert scenario.n_prefix_tokens + scenario.n_suffix_tokens == n - 3
    else:
        assert scenario.mode == "l2r"
        assert scenario.n_prefix_tokens == n and scenario.n_suffix_tokens == 0
        assert scenario.prefix_ids == prompt
    assert len(scenario.target_ids) >= 1
    if scenario.task == "noise":
        assert scenario.alignment == "synthetic"
        assert not set(prompt[1:-1] if fim else prompt) & table.special_ids - ({fim.suffix} if fim else set())
        return
    assert source[scenario.hole_start : scenario.hole_end].decode("utf-8") == scenario.target_text
    assert table.encode(scenario.target_text) == scenario.target_ids
    prefix = table.decode(scenario.prefix_ids).encode("utf-8")
    assert len(prefix) > 0 or (fim is not None and scenario.hole_start == 0)
    assert source[: scenario.hole_start].endswith(prefix)
    suffix = table.decode(scenario.suffix_ids).encode("utf-8")
    assert source[scenario.hole_end :].startswith(suffix)
    if fim is not None:
        half = (n - 3 + 1) // 2
        if scenario.n_prefix_tokens < half:  # the hole is near the file start: the prefix is all of it
            assert prefix == source[: scenario.hole_start]
        if scenario.n_suffix_tokens < n - 3 - half:  # near the file end: the suffix is all of the rest
            assert suffix == source[scenario.hole_end :]
    if scenario.task in OPERATOR_TOKENS:
        assert scenario.node_type in OPERATOR_TOKENS[scenario.task]
        assert scenario.node_type in scenario.target_text
    if scenario.task != "string_literals":
        for start, end, kind in comment_and_string_ranges(source):
            overlap = start < scenario.hole_end and scenario.hole_start < end
            assert not overlap, f"{scenario.task} target {scenario.target_text!r} touches a {kind}"
    if scenario.alignment != "exact":
        assert scenario.alignment.startswith("widened:")
