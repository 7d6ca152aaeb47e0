"""mine_scenarios on our fixtures: every task, exact windows, determinism, sampling, skips."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlens.errors import InvalidInput
from attnlens.mining import TASKS, MiningStats, SourceFile, iter_corpus, mine_scenarios
from tests.mining.checks import check_scenario
from tests.mining.conftest import JAVA_FIXTURES

CONTEXT = 64


def mine(files, table, fim, **kwargs):
    kwargs.setdefault("tasks", TASKS)
    kwargs.setdefault("per_task", 1000)
    kwargs.setdefault("context_tokens", CONTEXT)
    return list(mine_scenarios(files, tokenizer=table, fim=fim, **kwargs))


def sources(files):
    return {f.path: f.text.encode() for f in files}


@pytest.mark.parametrize("use_fim", [True, False], ids=["fim", "l2r"])
def test_every_task_from_fixtures_and_every_scenario_checks_out(fixture_files, tiny_table, tiny_fim, use_fim):
    fim = tiny_fim if use_fim else None
    stats = MiningStats()
    scenarios = mine(fixture_files, tiny_table, fim, stats=stats)
    by_path = sources(fixture_files)
    for scenario in scenarios:
        check_scenario(scenario, by_path[scenario.file_path], tiny_table, fim)
    made = Counter(s.task for s in scenarios)
    assert set(made) == set(TASKS)
    assert stats.scenarios == made
    assert stats.files_mined == len(fixture_files)
    assert stats.files_with_parse_errors == 1  # Broken.java
    # One scenario per task per file at most (the paper's one capture per file).
    assert max(Counter((s.task, s.file_path) for s in scenarios).values()) == 1


def test_unicode_identifiers_become_scenarios(fixture_files, tiny_table):
    scenarios = mine(fixture_files, tiny_table, None, tasks=["identifiers"], seed=0)
    unicode = [s for s in scenarios if s.file_path == "Unicode.java"]
    seeds = [mine(fixture_files, tiny_table, None, tasks=["identifiers"], seed=k) for k in range(1, 12)]
    unicode += [s for batch in seeds for s in batch if s.file_path == "Unicode.java"]
    assert any(not s.target_text.isascii() for s in unicode)


def test_same_seed_same_scenarios_other_seed_other_choices(fixture_files, tiny_table, tiny_fim):
    first = mine(fixture_files, tiny_table, tiny_fim, seed=7)
    again = mine(fixture_files, tiny_table, tiny_fim, seed=7)
    other = mine(fixture_files, tiny_table, tiny_fim, seed=8)
    assert first == again
    assert [(s.hole_start, s.hole_end) for s in first] != [(s.hole_start, s.hole_end) for s in other]
    assert all(s.seed == 7 for s in first)


def test_choice_in_a_file_does_not_depend_on_the_other_files(fixture_files, tiny_table, tiny_fim):
    alone = mine([fixture_files[1]], tiny_table, tiny_fim, seed=3)
    among = [
        s for s in mine(fixture_files, tiny_table, tiny_fim, seed=3) if s.file_path == fixture_files[1].path
    ]
    assert alone == among


def test_per_task_limits_and_stops_reading(fixture_files, tiny_table, tiny_fim):
    pulled = []

    def counting():
        for file in fixture_files:
            pulled.append(file.path)
            yield file

    scenarios = mine(counting(), tiny_table, tiny_fim, tasks=["closing_bracket", "eol"], per_task=2)
    assert Counter(s.task for s in scenarios) == {"closing_bracket": 2, "eol": 2}
    assert len(pulled) < len(fixture_files)
    assert mine(fixture_files, tiny_table, tiny_fim, per_task=0) == []


def test_short_files_are_skipped_and_special_token_text_stays_text(tiny_table, tiny_fim):
    def source(path, text):
        return SourceFile(path=path, text=text, sha256=path * 8, corpus="mem")

    long_body = "".join(f"    int v{i} = {i} + v{i};\n" for i in range(60))
    special = "class T {\n" + long_body + '  String s = "<fim_middle><|endoftext|>";\n}\n'
    files = [
        source("Short", "class S { int x = 1; }\n"),
        source("Special", special),
        source("Long", "class L {\n" + long_body + "}\n"),
    ]
    stats = MiningStats()
    scenarios = mine(files, tiny_table, tiny_fim, stats=stats, tasks=["numeric_literals", "string_literals"])
    assert dict(stats.skipped) == {"too_short": 1}
    assert {s.file_path for s in scenarios} == {"Special", "Long"}
    strings = [s for s in scenarios if s.task == "string_literals"]
    assert len(strings) == 1 and "<fim_middle><|endoftext|>" in strings[0].target_text
    for scenario in scenarios:
        check_scenario(
            scenario,
            (special if scenario.file_path == "Special" else files[2].text).encode(),
            tiny_table,
            tiny_fim,
        )
    assert not set(strings[0].target_ids) & tiny_table.special_ids


def test_crlf_files_keep_their_bytes(tmp_path, tiny_table):
    body = "".join(f"        total += values[{i}] * {i};\r\n" for i in range(40))
    text = (
        "class C {\r\n    int sum(int[] values) {\r\n        int total = 0;\r\n"
        + body
        + "        return total;\r\n    }\r\n}\r\n"
    )
    (tmp_path / "C.java").write_bytes(text.encode())
    files = list(iter_corpus(tmp_path, max_file_bytes=100_000))
    scenarios = mine(files, tiny_table, None, per_task=1)
    eol = [s for s in scenarios if s.task == "eol"]
    assert eol and eol[0].target_text.startswith(";\r\n")
    for scenario in scenarios:
        check_scenario(scenario, text.encode(), tiny_table, None)


def test_invalid_arguments_raise_at_call_time(fixture_files, tiny_table):
    with pytest.raises(InvalidInput, match="unknown task"):
        mine_scenarios(fixture_files, tokenizer=tiny_table, fim=None, tasks=["keywords"], per_task=1)
    with pytest.raises(InvalidInput, match="context_tokens"):
        mine_scenarios(
            fixture_files, tokenizer=tiny_table, fim=None, tasks=TASKS, per_task=1, context_tokens=1
        )


def test_long_targets_are_left_out(fixture_files, tiny_table, tiny_fim):
    stats = MiningStats()
    scenarios = mine(
        fixture_files, tiny_table, tiny_fim, tasks=["string_literals"], max_target_tokens=3, stats=stats
    )
    assert all(len(s.target_ids) <= 3 for s in scenarios)
    assert stats.rejected["target_too_long"] > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    index=st.integers(0, 5),
    seed=st.integers(0, 2**31),
    context=st.sampled_from([16, 32, 48, 64]),
    use_fim=st.booleans(),
)
def test_property_windows_and_targets_match_the_source(
    fixture_files, tiny_table, tiny_fim, index, seed, context, use_fim
):
    file = fixture_files[index]
    fim = tiny_fim if use_fim else None
    for scenario in mine([file], tiny_table, fim, seed=seed, context_tokens=context):
        check_scenario(scenario, file.text.encode(), tiny_table, fim)


@pytest.mark.slow
def test_smollm2_left_to_right_scenarios_on_fixtures(fixture_files, smollm2_table):
    scenarios = mine(fixture_files, smollm2_table, None, context_tokens=48)
    by_path = sources(fixture_files)
    for scenario in scenarios:
        check_scenario(scenario, by_path[scenario.file_path], smollm2_table, None)
    assert {s.task for s in scenarios} == set(TASKS)
    assert JAVA_FIXTURES.is_dir()
