"""The relational head-type scores: token relations on hand-made prompts, and scores on hand-built patterns
whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlens.atlas.patterns import pattern_stats, relational_scores
from attnlens.contracts.head_scores import HEAD_SCORES, RELATIONAL_SCORE_NAMES, SCORE_NAMES, head_score
from attnlens.mining.token_relations import TokenRelation, id_relations, token_relations

MARKER = 99


def pairs(relation: TokenRelation) -> set[tuple[int, int]]:
    return set(zip(relation.queries.tolist(), relation.keys.tolist(), strict=True))


def test_duplicate_and_induction_pairs_from_ids():
    #        0  1  2  3  4  5       6
    ids = [5, 1, 2, 5, 1, MARKER, 5]
    relations = id_relations(ids, frozenset({MARKER}))
    assert pairs(relations["duplicate_token"]) == {(3, 0), (4, 1), (6, 0), (6, 3)}
    # Induction: the position after an earlier occurrence (the marker after position 4 is no key).
    assert pairs(relations["induction"]) == {(3, 1), (4, 2), (6, 1), (6, 4)}


def test_no_repeated_token_means_the_relation_does_not_apply():
    relations = id_relations([1, 2, 3, 4], frozenset())
    assert not relations["duplicate_token"].applies and not relations["induction"].applies


# A Java fragment split into tokens by hand, the way a BPE tokenizer might (spaces glued to words).
JAVA_TOKENS = [
    b"<fim_prefix>",  # 0  marker
    b"int",  # 1
    b" size",  # 2  declares `size`
    b" =",  # 3
    b" count",  # 4
    b"(",  # 5
    b"list",  # 6
    b",",  # 7
    b" size",  # 8  a use of `size`, declared at 2
    b");",  # 9  closes the bracket at 5
    b"\n",  # 10
    b"<fim_suffix>",  # 11 marker
    b"size",  # 12 another use of `size`
    b"++;",  # 13
    b"<fim_middle>",  # 14 marker
]
JAVA_IDS = [MARKER, 1, 2, 3, 4, 5, 6, 7, 2, 8, 9, MARKER, 10, 11, MARKER]


def java_relations() -> dict[str, TokenRelation]:
    return token_relations(JAVA_IDS, JAVA_TOKENS, frozenset({MARKER}))


def test_matching_bracket_pairs_a_closing_token_with_its_opening_one():
    assert pairs(java_relations()["matching_bracket"]) == {(9, 5)}


def test_same_identifier_and_declaration_pairs():
    relations = java_relations()
    # `size` at 8 and at 12 (across the FIM marker) point back at its earlier occurrences.
    assert pairs(relations["same_identifier"]) == {(8, 2), (12, 2), (12, 8)}
    # Each use points at the declaring token only.
    assert pairs(relations["declaration"]) == {(8, 2), (12, 2)}


def test_callee_pairs_point_from_the_arguments_to_the_method_name():
    # Tokens after `(` up to the one holding `)`: list , size );
    assert pairs(java_relations()["callee"]) == {(6, 4), (7, 4), (8, 4), (9, 4)}


def test_every_pair_is_causal_and_no_marker_takes_part():
    for relation in java_relations().values():
        assert np.all(relation.keys < relation.queries)
        markers = {0, 11, 14}
        assert not markers & set(relation.queries.tolist()) and not markers & set(relation.keys.tolist())


def test_syntax_relations_do_not_apply_to_text_without_that_syntax():
    tokens = [b"hello", b" world", b" again"]
    relations = token_relations([1, 2, 3], tokens, frozenset())
    for name in ("matching_bracket", "declaration", "callee"):
        assert not relations[name].applies, name


def _attend(n: int, targets: dict[int, int]) -> torch.Tensor:
    """A causal pattern: row q puts all its weight on targets[q] (else on itself)."""
    p = torch.zeros(n, n)
    for q in range(n):
        p[q, targets.get(q, q)] = 1.0
    return p


def test_relational_score_is_the_mean_mass_on_related_keys():
    relation = TokenRelation(queries=np.array([3, 4, 4]), keys=np.array([1, 0, 2]))
    on_target = _attend(5, {3: 1, 4: 2})  # both rows fully on a related key
    half = _attend(5, {3: 1})  # row 3 on its key, row 4 on itself
    uniform = torch.tril(torch.ones(5, 5))
    uniform = uniform / uniform.sum(-1, keepdim=True)
    scores = relational_scores(torch.stack([on_target, half, uniform]), relation)
    assert scores is not None
    # Row 4 has two related keys: uniform attention puts 2/5 on them; row 3 puts 1/4 on its one.
    assert scores.tolist() == pytest.approx([1.0, 0.5, (1 / 4 + 2 / 5) / 2])


def test_an_inapplicable_relation_gives_no_score_not_zero():
    empty = TokenRelation(queries=np.zeros(0, dtype=np.int64), keys=np.zeros(0, dtype=np.int64))
    assert relational_scores(torch.eye(4)[None], empty) is None
    stats = pattern_stats(torch.eye(4)[None], {"induction": empty})
    assert stats.column("induction_mass") is None
    assert stats.row(0)["induction_mass"] is None
    assert stats.row(0)["diagonal_mass"] == pytest.approx(1.0)


def test_an_induction_head_scores_one_on_a_repeated_sequence():
    # [a b c a b c]: at the second a, b, c an induction head looks at the token after the first one.
    ids = [1, 2, 3, 1, 2, 3]
    relations = id_relations(ids, frozenset())
    induction = _attend(6, {3: 1, 4: 2, 5: 3})
    duplicate = _attend(6, {3: 0, 4: 1, 5: 2})
    stats = pattern_stats(torch.stack([induction, duplicate]), relations)
    assert stats.column("induction_mass").tolist() == pytest.approx([1.0, 0.0])
    assert stats.column("duplicate_token_mass").tolist() == pytest.approx([0.0, 1.0])
    # The previous-token score sees the induction head's offset for what it is not.
    assert stats.previous_token_mass[0] < 0.5


def test_the_registry_names_every_stored_score_once():
    assert len(set(SCORE_NAMES)) == len(SCORE_NAMES) == len(HEAD_SCORES)
    assert set(RELATIONAL_SCORE_NAMES) < set(SCORE_NAMES)
    assert head_score("induction_mass").label == "induction"
    with pytest.raises(KeyError, match="known"):
        head_score("nope")
