"""The three tiny architectures (StarCoder2, Qwen2, Llama; each with its family's FIM tokenizer) through the
whole target-model layer: FIM detection, mining, first-token correctness, GQA capture, ablation and
generation. Real configs, real tokenizers, real forward passes; each model builds in milliseconds."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from attnlens.contracts.models import PRESETS, FimTokens
from attnlens.heads import HeadRef
from attnlens.mining import TokenTable, first_token_correct, iter_corpus, mine_scenarios
from attnlens.mining.scenarios import Scenario
from attnlens.model import TargetModel
from attnlens.model.ablation import attention_output_projections
from attnlens.model.tiny import TINY_ARCHITECTURES, build_tiny, tiny_tokenizer
from tests.conftest import JAVA_FIXTURES, MODELS_CACHE

# Written out here (not read from the registry or tiny.py), so a typo there fails these tests.
# preset: (architecture, family, KV heads, (end, prefix, suffix, middle) spellings)
EXPECTED = {
    "tiny-starcoder2": (
        "Starcoder2ForCausalLM", "starcoder2", 2,
        ("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    ),
    "tiny-qwen2": (
        "Qwen2ForCausalLM", "qwen2.5-coder", 2,
        ("<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ),
    "tiny-llama": (
        "LlamaForCausalLM", "deepseek-coder", 1,
        (
            "<\uff5cend\u2581of\u2581sentence\uff5c>",
            "<\uff5cfim\u2581begin\uff5c>",
            "<\uff5cfim\u2581hole\uff5c>",
            "<\uff5cfim\u2581end\uff5c>",
        ),
    ),
}  # fmt: skip
TASKS = ("identifiers", "closing_bracket", "random")
CONTEXT = 64


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def tiny(request: pytest.FixtureRequest) -> TargetModel:
    return TargetModel.load(request.param, models_dir=MODELS_CACHE, device="cpu")


@pytest.fixture(scope="module")
def scenarios(tiny: TargetModel) -> list[Scenario]:
    files = list(iter_corpus(JAVA_FIXTURES, max_file_bytes=1_000_000))
    table = TokenTable(tiny.tokenizer)
    mined = list(
        mine_scenarios(
            files, tokenizer=table, fim=tiny.info.fim, tasks=TASKS, per_task=2, context_tokens=CONTEXT
        )
    )
    assert {s.task for s in mined} == set(TASKS)
    return mined


def test_every_tiny_preset_is_registered_and_built():
    assert {n for n, p in PRESETS.items() if p.source == "tiny"} == set(EXPECTED) == set(TINY_ARCHITECTURES)


def test_fim_detection_gives_the_family_and_its_ids(tiny: TargetModel):
    architecture, family, n_kv, (end, prefix, suffix, middle) = EXPECTED[tiny.info.name]
    info = tiny.info
    assert (info.architecture, info.family) == (architecture, family)
    assert (info.n_layers, info.n_heads, info.n_kv_heads, info.head_dim) == (4, 4, n_kv, 32)
    assert info.n_kv_heads < info.n_heads  # grouped-query attention
    vocab = tiny.tokenizer.get_vocab()
    assert info.fim == FimTokens(prefix=vocab[prefix], middle=vocab[middle], suffix=vocab[suffix])
    assert info.fim == FimTokens(prefix=1, middle=2, suffix=3)  # the shipped tokenizer's ids, renamed
    assert info.eos_ids == (vocab[end],) == (0,)
    assert info.weights == "random weights (seed 1234), untrained"
    # Each marker is one token, and ordinary text is tokenized as in the shipped tokenizer.
    for marker in (prefix, suffix, middle):
        assert tiny.encode(marker) == [vocab[marker]]
    java = "public int max(int a, int b) { return a >= b ? a : b; }"
    assert tiny.encode(java) == list(tiny_tokenizer("tiny-starcoder2")(java)["input_ids"])


def test_mined_windows_are_fim_prompts_with_the_family_markers(tiny: TargetModel, scenarios: list[Scenario]):
    _, _, _, (_, prefix, suffix, middle) = EXPECTED[tiny.info.name]
    fim = tiny.info.fim
    assert fim is not None
    for s in scenarios:
        assert s.mode == "fim" and len(s.prompt_ids) == CONTEXT
        assert s.prompt_ids[0] == fim.prefix
        assert s.prompt_ids[1 + s.n_prefix_tokens] == fim.suffix
        assert s.prompt_ids[-1] == fim.middle
        assert [s.prompt_ids.count(m) for m in (fim.prefix, fim.suffix, fim.middle)] == [1, 1, 1]
        assert s.prefix_ids + s.suffix_ids == [
            t for i, t in enumerate(s.prompt_ids) if i not in (0, 1 + s.n_prefix_tokens, CONTEXT - 1)
        ]
        text = tiny.decode(s.prompt_ids)
        assert text.startswith(prefix) and text.endswith(middle) and suffix in text
        assert not {fim.prefix, fim.middle, fim.suffix} & set(s.target_ids)


def test_first_token_correctness(tiny: TargetModel, scenarios: list[Scenario]):
    capture = tiny.capture([s.prompt_ids for s in scenarios])
    for index, s in enumerate(scenarios):
        logits = tiny.next_token_logits(s.prompt_ids)
        assert torch.allclose(capture.last_logits[index], logits, atol=1e-5)
        greedy = int(logits.argmax())
        assert first_token_correct(logits, s) == (greedy == s.target_ids[0])
        assert first_token_correct(logits, dataclasses.replace(s, target_ids=[greedy]))
        assert not first_token_correct(logits, dataclasses.replace(s, target_ids=[(greedy + 1) % 1024]))


def test_capture_gives_one_causal_softmax_pattern_per_query_head(
    tiny: TargetModel, scenarios: list[Scenario]
):
    prompts = [s.prompt_ids for s in scenarios[:3]] + [scenarios[3].prompt_ids[:20]]
    capture = tiny.capture(prompts)
    assert capture.attention.shape == (4, 4, 4, CONTEXT, CONTEXT)  # batch, layer, query head, q, k
    for index, n in enumerate((CONTEXT, CONTEXT, CONTEXT, 20)):
        pattern = capture.pattern(index)
        assert pattern.shape == (4, 4, n, n)
        assert torch.allclose(pattern.sum(-1), torch.ones(4, 4, n), atol=1e-5)
        assert torch.equal(torch.triu(pattern, diagonal=1), torch.zeros_like(pattern))
    # Query heads that share a KV head still attend differently (their queries differ).
    assert not torch.allclose(capture.pattern(0)[1, 0], capture.pattern(0)[1, 1])


def test_ablating_a_head_changes_logits_until_the_context_exits(tiny: TargetModel, scenarios: list[Scenario]):
    prompt = scenarios[0].prompt_ids
    before = tiny.next_token_logits(prompt)
    with tiny.ablation([HeadRef(2, 1)]):
        during = tiny.next_token_logits(prompt)
    after = tiny.next_token_logits(prompt)
    assert (during - before).abs().max() > 1e-4
    assert torch.equal(before, after)
    assert all(not p._forward_pre_hooks for p in attention_output_projections(tiny.model))


def test_ablation_equals_zeroing_the_heads_output_projection_columns(
    tiny: TargetModel, scenarios: list[Scenario]
):
    heads = [HeadRef(0, 3), HeadRef(3, 0)]
    prompt = scenarios[1].prompt_ids
    with tiny.ablation(heads):
        hooked = tiny.next_token_logits(prompt)
    edited = build_tiny(tiny.info.name)
    d = tiny.info.head_dim
    with torch.no_grad():
        for ref in heads:
            edited.model.layers[ref.layer].self_attn.o_proj.weight[:, ref.head * d : (ref.head + 1) * d] = 0
    reference = TargetModel(edited, tiny.tokenizer, name="edited").next_token_logits(prompt)
    assert (hooked - reference).abs().max().item() <= 1e-5


def test_greedy_fim_generation_stops_at_stop_tokens(tiny: TargetModel, scenarios: list[Scenario]):
    prompt = scenarios[2].prompt_ids
    free = tiny.generate(prompt, 6)
    first = tiny.next_token_logits(prompt).argmax().item()
    assert free.new_ids[0] == first and torch.equal(free.first_logits, tiny.next_token_logits(prompt))
    # The family's end token is the default stop; a random model rarely says it, so the budget ends it.
    assert 0 in tiny.info.eos_ids and (free.stopped_by == "stop_token") == (free.new_ids[-1] == 0)
    if free.stopped_by == "max_new_tokens":
        assert len(free.new_ids) == 6
    # A stop token the model does produce ends the completion right there, the stop token included.
    stop_at = free.new_ids[1]
    stopped = tiny.generate(prompt, 6, stop_ids=[*tiny.info.eos_ids, stop_at])
    assert stopped.new_ids == free.new_ids[: free.new_ids.index(stop_at) + 1]
    assert stopped.stopped_by == "stop_token"
    # Continuing from the capture's KV cache (this architecture's cache class) gives the same tokens.
    capture = tiny.capture([prompt, scenarios[3].prompt_ids], continue_tokens=[6, 2])
    assert capture.continuations[0] == free.new_ids
    assert capture.continuations[1] == tiny.generate(scenarios[3].prompt_ids, 2).new_ids


def test_loading_the_preset_twice_gives_the_same_weights(tiny: TargetModel):
    again = build_tiny(tiny.info.name)
    for (name, x), y in zip(tiny.model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
