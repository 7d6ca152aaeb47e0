"""The repeated-random-token probe: the agreement of two head sets on hand-made scores, the stripe reading on
hand-built attention, and the probe on the tiny StarCoder2 against a plain-loop reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlens.atlas.probe import (
    PROBE_THRESHOLD,
    ProbeResult,
    agreement,
    atlas_score_name,
    ordinary_token_ids,
    probe_sequences,
    repeated_random_tokens,
    stripe_sums,
)
from attnlens.contracts.head_scores import head_score
from attnlens.errors import InvalidInput

# Small enough to run in about a second on the tiny model; 5 sequences in batches of 2 leave a short last
# batch, so the batching is exercised too.
LENGTH, N_SEQUENCES, BATCH = 12, 5, 2


# --- agreement: a pure function on hand-made scores ----------------------------------------------------


def test_agreement_counts_and_ranks_known_sets():
    probe = {"L0H0": 0.9, "L0H1": 0.5, "L1H0": 0.1, "L1H1": 0.0}
    atlas = {"L0H0": 0.6, "L0H1": 0.1, "L1H0": 0.4, "L1H1": None}
    result = agreement(probe, atlas, probe_threshold=0.4, atlas_threshold=0.3)
    assert result.probe_heads == ["L0H0", "L0H1"]
    assert result.atlas_heads == ["L0H0", "L1H0"]
    assert result.both == ["L0H0"]
    assert result.precision == pytest.approx(0.5)
    assert result.recall == pytest.approx(0.5)
    # Over L0H0, L0H1, L1H0 (L1H1 has no median): probe ranks 3 2 1, atlas ranks 3 1 2;
    # rho = 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5.
    assert result.spearman == pytest.approx(0.5)
    assert result.n_heads == 4


def test_agreement_thresholds_are_inclusive_and_heads_sort_by_layer():
    probe = {"L10H0": 0.4, "L2H0": 0.8, "L2H1": 0.39}
    atlas = {"L10H0": 0.3, "L2H0": 0.9, "L2H1": 0.2}
    result = agreement(probe, atlas, probe_threshold=0.4, atlas_threshold=0.3)
    assert result.probe_heads == ["L2H0", "L10H0"]  # by (layer, head), not as strings
    assert result.both == ["L2H0", "L10H0"]
    assert result.precision == 1.0 and result.recall == 1.0
    # Over L2H0, L2H1, L10H0: probe 0.8 0.39 0.4 ranks 3 1 2, atlas 0.9 0.2 0.3 ranks 3 1 2: rho = 1.
    assert result.spearman == pytest.approx(1.0)


def test_agreement_undefined_parts_are_none():
    probe = {"L0H0": 0.1, "L0H1": 0.2}
    none_labelled = agreement(probe, {"L0H0": 0.0, "L0H1": 0.1}, probe_threshold=0.4, atlas_threshold=0.3)
    assert none_labelled.probe_heads == [] and none_labelled.atlas_heads == []
    assert none_labelled.precision is None and none_labelled.recall is None
    assert none_labelled.spearman == pytest.approx(1.0)

    no_medians = agreement(probe, {"L0H0": None, "L0H1": None}, probe_threshold=0.15, atlas_threshold=0.3)
    assert no_medians.probe_heads == ["L0H1"] and no_medians.atlas_heads == []
    assert no_medians.precision is None and no_medians.recall == 0.0
    assert no_medians.spearman is None

    one_head = agreement(probe, {"L0H0": 0.5}, probe_threshold=0.4, atlas_threshold=0.3)
    assert one_head.atlas_heads == ["L0H0"] and one_head.precision == 0.0 and one_head.spearman is None

    constant = agreement(probe, {"L0H0": 0.2, "L0H1": 0.2}, probe_threshold=0.4, atlas_threshold=0.3)
    assert constant.spearman is None


def test_agreement_refuses_heads_the_probe_did_not_score():
    with pytest.raises(InvalidInput, match="same model"):
        agreement({"L0H0": 0.5}, {"L0H0": 0.5, "L9H9": 0.5}, probe_threshold=0.4, atlas_threshold=0.3)


def test_probe_kinds_name_real_atlas_scores():
    assert head_score(atlas_score_name("induction")).label == "induction"
    assert head_score(atlas_score_name("previous_token")).label == "previous-token"
    assert PROBE_THRESHOLD == 0.4


# --- the stripes on hand-built attention ---------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, 1])
def test_stripes_read_a_perfect_induction_and_previous_token_head(offset: int):
    """Head 0 puts all of each second-half row on the token after the earlier occurrence, head 1 on the
    previous token, head 2 on the first key (a sink): scores (1, 0), (0, 1), (0, 0)."""
    length = 6
    n = offset + 2 * length
    attention = torch.zeros(1, 1, 3, n, n)
    for q in range(n):
        attention[0, 0, 2, q, 0] = 1.0
        if q >= offset + length:
            attention[0, 0, 0, q, q - (length - 1)] = 1.0
            attention[0, 0, 1, q, q - 1] = 1.0
        else:  # first-half rows are not read: make them look like the wrong head
            attention[0, 0, 0, q, max(q - 1, 0)] = 1.0
            attention[0, 0, 1, q, 0] = 1.0
    induction, previous = stripe_sums(attention, sequence_length=length, offset=offset)
    assert (induction / length).tolist() == [[1.0, 0.0, 0.0]]
    assert (previous / length).tolist() == [[0.0, 1.0, 0.0]]


# --- the probe on the tiny StarCoder2 ------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe_result(tiny_model) -> ProbeResult:
    return repeated_random_tokens(
        tiny_model, sequence_length=LENGTH, n_sequences=N_SEQUENCES, seed=3, batch_size=BATCH
    )


def test_sequences_are_a_bos_and_ordinary_tokens_repeated_twice(tiny_model):
    sequences = probe_sequences(tiny_model, sequence_length=LENGTH, n_sequences=N_SEQUENCES, seed=3)
    bos = tiny_model.tokenizer.bos_token_id
    special = set(tiny_model.tokenizer.all_special_ids)
    real_vocab = min(len(tiny_model.tokenizer), tiny_model.info.vocab_size)
    assert bos is not None and len(sequences) == N_SEQUENCES
    for seq in sequences:
        assert len(seq) == 1 + 2 * LENGTH and seq[0] == bos
        first, second = seq[1 : 1 + LENGTH], seq[1 + LENGTH :]
        assert first == second and len(set(first)) == LENGTH
        assert all(t not in special and 0 <= t < real_vocab for t in first)
    assert set(ordinary_token_ids(tiny_model).tolist()).isdisjoint(special)
    assert len({tuple(seq) for seq in sequences}) == N_SEQUENCES


def test_probe_result_has_the_models_shape_and_shares(tiny_model, probe_result: ProbeResult):
    shape = (tiny_model.info.n_layers, tiny_model.info.n_heads)
    assert (probe_result.n_layers, probe_result.n_heads) == shape
    assert (probe_result.sequence_length, probe_result.n_sequences, probe_result.seed) == (
        LENGTH,
        N_SEQUENCES,
        3,
    )
    assert probe_result.model_name == tiny_model.info.name
    for scores in (probe_result.induction, probe_result.previous_token):
        assert scores.shape == shape and scores.dtype == np.float64
        assert np.all((scores >= 0.0) & (scores <= 1.0))
    by_name = probe_result.head_scores("induction")
    assert len(by_name) == shape[0] * shape[1]
    assert by_name["L1H2"] == probe_result.induction[1, 2]
    assert probe_result.head_scores("previous_token")["L3H0"] == probe_result.previous_token[3, 0]
    with pytest.raises(InvalidInput, match="probe kind"):
        probe_result.head_scores("duplicate")  # type: ignore[arg-type]


def test_probe_is_deterministic_for_a_seed_and_changes_with_it(tiny_model, probe_result: ProbeResult):
    again = repeated_random_tokens(
        tiny_model, sequence_length=LENGTH, n_sequences=N_SEQUENCES, seed=3, batch_size=4
    )
    np.testing.assert_allclose(again.induction, probe_result.induction, atol=1e-6)
    np.testing.assert_allclose(again.previous_token, probe_result.previous_token, atol=1e-6)
    other = repeated_random_tokens(tiny_model, sequence_length=LENGTH, n_sequences=N_SEQUENCES, seed=4)
    assert not np.allclose(other.induction, probe_result.induction, atol=1e-6)
    assert not np.allclose(other.previous_token, probe_result.previous_token, atol=1e-6)


@pytest.mark.parametrize(("layer", "head"), [(1, 2)])
def test_probe_matches_a_plain_loop_over_captured_attention(tiny_model, probe_result, layer: int, head: int):
    """The reference finds each induction key by searching for the query token's earlier occurrence, not by
    offset arithmetic, on attention captured one sequence at a time."""
    sequences = probe_sequences(tiny_model, sequence_length=LENGTH, n_sequences=N_SEQUENCES, seed=3)
    induction_total = previous_total = 0.0
    rows = 0
    for seq in sequences:
        pattern = tiny_model.capture([seq]).pattern(0)[layer, head]
        for query in range(len(seq) - LENGTH, len(seq)):
            earlier = [k for k in range(query) if seq[k] == seq[query]]
            assert len(earlier) == 1  # each half holds distinct tokens
            induction_total += float(pattern[query, earlier[0] + 1])
            previous_total += float(pattern[query, query - 1])
            rows += 1
    assert rows == N_SEQUENCES * LENGTH
    assert probe_result.induction[layer, head] == pytest.approx(induction_total / rows, abs=1e-5)
    assert probe_result.previous_token[layer, head] == pytest.approx(previous_total / rows, abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sequence_length": 1}, "at least 2"),
        ({"n_sequences": 0}, "at least 1"),
        ({"batch_size": 0}, "at least 1"),
        ({"sequence_length": 600}, "at most 511"),  # 1 + 2 * 600 tokens > the context of 1024
    ],
)
def test_bad_parameters_say_what_to_use(tiny_model, kwargs: dict[str, int], message: str):
    with pytest.raises(InvalidInput, match=message):
        repeated_random_tokens(tiny_model, **kwargs)
