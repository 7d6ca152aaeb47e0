"""The head-type scores stored with every head pattern: their names, formulas and label thresholds.

A score is a number per (inference, head) computed from the head's raw attention before pooling. Five
always apply (every causal pattern has a diagonal, a first column ...). The relational ones read a
relation between tokens of the input (same token id, a bracket and its partner, a name and its
declaration): they apply only to inputs where the relation has at least one (query, key) pair, and are
absent (NULL, never 0) on the others. `docs/head_scores.md` gives each formula with an example.

Labels are hypotheses, not facts: a head gets a score's label when its median over the atlas (the inputs
where the score applies) reaches the score's threshold. The thresholds are fixed here, chosen before
looking at any atlas, and shown next to every label.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bump when a score's definition changes: rows computed under an older version are recomputed by the
# backfill job, and rows with no version (built before the scores existed) are computed for the first time.
HEAD_SCORES_VERSION = 1
LOCAL_WINDOW = 8  # the local band: keys within this many tokens of the query, itself included


@dataclass(frozen=True)
class HeadScore:
    """One score: its stored column, the label it gives a head, and what it measures."""

    name: str  # the head_pattern column and the API's key
    label: str  # what a head is called when its median passes `threshold`
    title: str  # a short heading for tables and axes
    formula: str  # in words, the quantity averaged over the applicable query rows
    threshold: float  # a head gets `label` when its median score over the atlas is at least this
    relational: bool  # applies only where its token relation has pairs (else NULL)


HEAD_SCORES: tuple[HeadScore, ...] = (
    HeadScore(
        "previous_token_mass", "previous-token", "Previous token",
        "attention on the key just before the query (rows 1..n-1)", 0.5, False,
    ),
    HeadScore(
        "diagonal_mass", "self", "Self",
        "attention on the query's own position", 0.5, False,
    ),
    HeadScore(
        "first_token_mass", "sink", "First-token sink",
        "attention on position 0", 0.7, False,
    ),
    HeadScore(
        "local_mass", "local", "Local band",
        f"attention on the {LOCAL_WINDOW} keys ending at the query (itself included)", 0.8, False,
    ),
    HeadScore(
        "entropy", "broad", "Broad (entropy)",
        "row entropy divided by log(row length): 0 = one key, 1 = uniform (rows 1..n-1)", 0.7, False,
    ),
    HeadScore(
        "duplicate_token_mass", "duplicate-token", "Duplicate token",
        "attention on earlier positions holding the query's token id (queries whose token occurred before)",
        0.3, True,
    ),
    HeadScore(
        "induction_mass", "induction", "Induction",
        "attention on the position right after an earlier occurrence of the query's token id "
        "(queries whose token occurred before, not just before them)",
        0.3, True,
    ),
    HeadScore(
        "bracket_mass", "matching-bracket", "Matching bracket",
        "attention from a closing bracket ) ] } to the token holding its opening partner",
        0.3, True,
    ),
    HeadScore(
        "same_identifier_mass", "same-identifier", "Same identifier",
        "attention from the last token of an identifier to the tokens of its earlier occurrences",
        0.3, True,
    ),
    HeadScore(
        "declaration_mass", "declaration", "Declaration",
        "attention from the last token of a name's use to the tokens of its nearest earlier declaration",
        0.3, True,
    ),
    HeadScore(
        "callee_mass", "argument-to-callee", "Argument to callee",
        "attention from a token inside a call's argument list to the name of the innermost method or "
        "constructor being called",
        0.3, True,
    ),
)  # fmt: skip

SCORE_NAMES: tuple[str, ...] = tuple(score.name for score in HEAD_SCORES)
RELATIONAL_SCORE_NAMES: tuple[str, ...] = tuple(score.name for score in HEAD_SCORES if score.relational)
# The token relation behind each relational score (`attnlens.mining.token_relations`).
RELATION_OF_SCORE: dict[str, str] = {
    "duplicate_token_mass": "duplicate_token",
    "induction_mass": "induction",
    "bracket_mass": "matching_bracket",
    "same_identifier_mass": "same_identifier",
    "declaration_mass": "declaration",
    "callee_mass": "callee",
}


def head_score(name: str) -> HeadScore:
    """The score called `name`; KeyError names the known ones."""
    for score in HEAD_SCORES:
        if score.name == name:
            return score
    raise KeyError(f"unknown head score {name!r}; known: {', '.join(SCORE_NAMES)}")
