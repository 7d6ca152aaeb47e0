"""Models trained with a BOS (Gemma, Llama 2) get it first in every prompt: mining, the noise control and the
prompt split all keep the window's length and the file's bytes."""

from __future__ import annotations

import pytest
from tokenizers.processors import TemplateProcessing

from attnlens.contracts.models import split_prompt
from attnlens.mining import TokenTable
from attnlens.mining.tasks import TASKS
from attnlens.model.tiny import tiny_starcoder2_tokenizer
from tests.mining.checks import check_scenario
from tests.mining.test_scenarios import mine, sources


@pytest.fixture(scope="module")
def bos_table() -> TokenTable:
    """The tiny tokenizer made to prepend its BOS (`<|endoftext|>`, id 0) like Gemma's does."""
    tokenizer = tiny_starcoder2_tokenizer()
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 0)]
    )
    return TokenTable(tokenizer)


def test_prompt_bos_is_read_from_the_tokenizer(bos_table, tiny_table):
    assert bos_table.prompt_bos == 0
    assert tiny_table.prompt_bos is None  # StarCoder2's tokenizer prepends nothing
    # Encoding source text never adds it: only the prompt builders do.
    assert 0 not in bos_table.encode("class A { int x; }")


@pytest.mark.parametrize("use_fim", [True, False], ids=["fim", "l2r"])
def test_mined_prompts_lead_with_bos_and_keep_the_file_bytes(fixture_files, bos_table, tiny_fim, use_fim):
    fim = tiny_fim if use_fim else None
    scenarios = mine(fixture_files, bos_table, fim, per_task=2)
    assert {s.task for s in scenarios} == set(TASKS)
    by_path = sources(fixture_files)
    for scenario in scenarios:
        assert scenario.prompt_ids[0] == 0 and scenario.prompt_ids.count(0) == 1
        check_scenario(scenario, by_path[scenario.file_path], bos_table, fim)


def test_split_prompt_leaves_the_bos_out_and_never_fails_on_a_stored_row():
    assert split_prompt([9, 1, 10, 11, 3, 12, 2], "fim", 2, 1) == ([10, 11], [12])
    assert split_prompt([1, 10, 11, 3, 12, 2], "fim", 2, 1) == ([10, 11], [12])
    assert split_prompt([9, 10, 11], "l2r", 2, 0) == ([10, 11], [])
    assert split_prompt([10, 11], "l2r", 2, 0) == ([10, 11], [])
    # Counts that do not fit the prompt (rows written by other code) slice as before, with no BOS taken.
    assert split_prompt([5, 6], "l2r", 16, 0) == ([5, 6], [])
    assert split_prompt([9, 9, 10, 11], "l2r", 2, 0) == ([9, 9], [])
