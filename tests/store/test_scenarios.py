"""save_scenarios: stores mined scenarios once, returns ids in input order, keeps token ids exactly."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from sqlalchemy import func, select

from attnlens.errors import InvalidInput
from attnlens.store import open_store, save_scenarios
from attnlens.store.codecs import unpack_token_ids
from attnlens.store.models import CorpusFile, Scenario


@dataclass(frozen=True)
class MinedScenario:
    """The fields of attnlens.mining.Scenario (duck-typed by the store)."""

    corpus: str = "jdk17"
    file_path: str = "java/util/ArrayList.java"
    file_sha256: str = "a" * 64
    task: str = "identifier"
    node_type: str = "identifier"
    hole_start: int = 100
    hole_end: int = 104
    target_text: str = " size"
    target_ids: tuple[int, ...] = (4242,)
    prompt_ids: tuple[int, ...] = tuple(range(256))
    mode: str = "l2r"
    context_tokens: int = 256
    n_prefix_tokens: int = 256
    n_suffix_tokens: int = 0
    seed: int = 0
    alignment: str = "moved-left-1-byte"


def make_scenarios() -> list[MinedScenario]:
    base = MinedScenario()
    return [
        base,
        replace(base, hole_start=200, hole_end=210, target_ids=(7, 8, 9)),
        replace(base, file_path="java/util/HashMap.java", file_sha256="b" * 64),
        replace(base, task="closing_bracket"),
    ]


def test_save_scenarios_round_trips_every_field(settings):
    store = open_store(settings)
    scenario = MinedScenario(prompt_ids=(0, 1, 49151, 2**31 - 1), target_ids=(5, 6))
    with store.session() as session:
        [scenario_id] = save_scenarios(session, [scenario], model_name="smollm2")
    with store.session() as session:
        row = session.get(Scenario, scenario_id)
        assert unpack_token_ids(row.prompt_ids) == [0, 1, 49151, 2**31 - 1]
        assert unpack_token_ids(row.target_ids) == [5, 6]
        assert (row.task, row.node_type, row.mode, row.hole_start, row.hole_end) == (
            "identifier",
            "identifier",
            "l2r",
            100,
            104,
        )
        assert (row.target_text, row.alignment, row.model_name) == (" size", "moved-left-1-byte", "smollm2")
        assert (row.context_tokens, row.n_prefix_tokens, row.n_suffix_tokens, row.seed) == (256, 256, 0, 0)
        assert (row.corpus_file.corpus, row.corpus_file.path, row.corpus_file.sha256) == (
            "jdk17",
            "java/util/ArrayList.java",
            "a" * 64,
        )


def test_save_scenarios_is_idempotent_and_keeps_input_order(settings):
    store = open_store(settings)
    scenarios = make_scenarios()
    with store.session() as session:
        first = save_scenarios(session, scenarios, model_name="smollm2")
    assert len(set(first)) == 4
    with store.session() as session:
        again = save_scenarios(session, list(reversed(scenarios)) + scenarios[:1], model_name="smollm2")
        assert again == list(reversed(first)) + first[:1]
        assert session.scalar(select(func.count()).select_from(Scenario)) == 4
        assert session.scalar(select(func.count()).select_from(CorpusFile)) == 2


def test_duplicates_within_one_batch_are_stored_once(settings):
    store = open_store(settings)
    with store.session() as session:
        ids = save_scenarios(session, [MinedScenario(), MinedScenario()], model_name="smollm2")
        assert ids[0] == ids[1]
        assert session.scalar(select(func.count()).select_from(Scenario)) == 1


def test_same_hole_for_another_model_or_context_is_another_scenario(settings):
    store = open_store(settings)
    with store.session() as session:
        a = save_scenarios(session, [MinedScenario()], model_name="smollm2")
        b = save_scenarios(session, [MinedScenario()], model_name="starcoder2-3b")
        c = save_scenarios(session, [MinedScenario(context_tokens=128)], model_name="smollm2")
    assert len({a[0], b[0], c[0]}) == 3


def test_a_scenario_with_an_unknown_mode_is_rejected(settings):
    store = open_store(settings)
    with pytest.raises(InvalidInput, match="fim or l2r"), store.session() as session:
        save_scenarios(session, [MinedScenario(mode="psm")], model_name="smollm2")


def test_save_many_scenarios_in_one_call(settings):
    store = open_store(settings)
    many = [
        replace(MinedScenario(), hole_start=i, hole_end=i + 1, file_sha256=f"{i % 37:064d}")
        for i in range(1500)
    ]
    with store.session() as session:
        ids = save_scenarios(session, many, model_name="smollm2")
    with store.session() as session:
        assert save_scenarios(session, many, model_name="smollm2") == ids
    assert len(set(ids)) == 1500
