"""The target-model layer on a tiny random StarCoder2 (real Starcoder2Config with GQA)."""

from __future__ import annotations

import pytest
import torch

from attnlens.errors import AttentionInvalid, AttentionUnavailable, HeadOutOfRange, InvalidInput
from attnlens.heads import HeadRef
from attnlens.model import TargetModel
from attnlens.model.ablation import attention_output_projections
from attnlens.model.tiny import build_tiny_starcoder2, tiny_starcoder2_tokenizer
from attnlens.model.validity import check_attention

JAVA = "public static int max(int a, int b) {\n    return a >= b ? a : b;\n}\n"


@pytest.fixture(scope="module")
def ids(tiny_model: TargetModel) -> list[int]:
    return tiny_model.encode(JAVA * 3)


def test_info_describes_gqa_and_fim(tiny_model: TargetModel):
    info = tiny_model.info
    assert (info.n_layers, info.n_heads, info.n_kv_heads, info.head_dim) == (4, 4, 2, 32)
    assert info.fim is not None and (info.fim.prefix, info.fim.middle, info.fim.suffix) == (1, 2, 3)
    assert info.attn_implementation == "eager"
    assert info.to_dict()["n_patterns"] == 16
    assert info.weights == info.to_dict()["weights"] == "random weights (seed 1234), untrained"


def test_weights_say_where_each_model_comes_from(tmp_path):
    """The embedded model is named for what it is (a dequantised 4-bit GGUF of the Instruct model)."""
    from attnlens.model.target import weights_of

    embedded = weights_of("smollm2")
    assert embedded.startswith("SmolLM2-135M-Instruct, 4-bit Q4_1 GGUF") and "dequantised" in embedded
    assert weights_of("starcoder2-3b") == "bigcode/starcoder2-3b from the Hugging Face hub"
    assert weights_of("org/some-model") == "org/some-model from the Hugging Face hub"
    assert weights_of(str(tmp_path)) == f"local folder {tmp_path}"


def test_capture_shapes_and_validity(tiny_model: TargetModel, ids: list[int]):
    cap = tiny_model.capture([ids, ids[:10]])
    assert cap.attention.shape == (2, 4, 4, len(ids), len(ids))
    assert cap.last_logits.shape == (2, tiny_model.info.vocab_size)
    pattern = cap.pattern(1)
    assert pattern.shape == (4, 4, 10, 10)
    assert torch.allclose(pattern.sum(-1), torch.ones(4, 4, 10), atol=1e-5)
    assert torch.equal(torch.triu(pattern, diagonal=1), torch.zeros_like(pattern))


def test_capture_on_sdpa_model_fails_loudly():
    model = TargetModel(build_tiny_starcoder2("sdpa"), tiny_starcoder2_tokenizer(), name="tiny-sdpa")
    with pytest.raises(AttentionUnavailable, match="eager"):
        model.capture([[5, 6, 7, 8]])


def test_validity_checks_catch_broken_patterns():
    good = torch.tril(torch.ones(1, 1, 2, 4, 4))
    good = good / good.sum(-1, keepdim=True)
    check_attention(good, [4], n_heads=2, tolerance=1e-5)
    with pytest.raises(AttentionInvalid, match="query heads"):
        check_attention(good, [4], n_heads=3, tolerance=1e-5)
    not_causal = torch.full((1, 1, 2, 4, 4), 0.25)
    with pytest.raises(AttentionInvalid, match="causal"):
        check_attention(not_causal, [4], n_heads=2, tolerance=1e-5)
    unnormalised = good * 1.1
    with pytest.raises(AttentionInvalid, match="sum to 1"):
        check_attention(unnormalised, [4], n_heads=2, tolerance=1e-5)


def test_validity_checks_find_one_bad_weight_anywhere():
    """One future weight or one NaN/inf anywhere in 3 layers x 2 heads of 70 x 70 (over several of the
    check's row blocks) is caught, wherever it is, including next to a block's edge."""
    n = 70
    good = torch.tril(torch.rand(3, 2, n, n, generator=torch.Generator().manual_seed(0)))
    good = (good / good.sum(-1, keepdim=True))[None]
    check_attention(good, [n], n_heads=2, tolerance=1e-5)
    spots = [(0, 1), (30, 31), (31, 32), (31, 33), (32, 69), (0, 69), (63, 64), (68, 69), (5, 40)]
    for q, k in spots:
        leaking = good.clone()
        leaking[0, 2, 1, q, k] = 1e-7
        with pytest.raises(AttentionInvalid, match="future"):
            check_attention(leaking, [n], n_heads=2, tolerance=1e-5)
    for bad in (float("nan"), float("inf"), float("-inf")):
        for q, k in [(0, 0), (45, 12), (69, 69)]:
            broken = good.clone()
            broken[0, 1, 0, q, k] = bad
            with pytest.raises(AttentionInvalid, match="NaN or inf"):
                check_attention(broken, [n], n_heads=2, tolerance=1e-5)


def test_padding_changes_nothing(tiny_model: TargetModel, ids: list[int]):
    short = ids[:17]
    alone = tiny_model.capture([short], full_logits=True)
    padded = tiny_model.capture([ids, short], full_logits=True)
    assert torch.allclose(padded.pattern(1), alone.pattern(0), atol=1e-6)
    assert torch.allclose(padded.logits[1, :17], alone.logits[0], atol=1e-5)
    assert torch.allclose(padded.last_logits[1], alone.last_logits[0], atol=1e-5)


def test_batched_capture_equals_one_by_one(tiny_model: TargetModel, ids: list[int]):
    seqs = [ids[:40], ids[5:30], ids[:12], ids[3:50]]
    batched = tiny_model.capture(seqs)
    for i, seq in enumerate(seqs):
        single = tiny_model.capture([seq])
        assert torch.allclose(batched.pattern(i), single.pattern(0), atol=1e-6)
        assert torch.allclose(batched.last_logits[i], single.last_logits[0], atol=1e-5)


def test_ablating_one_head_changes_logits_and_exit_restores_them(tiny_model: TargetModel, ids: list[int]):
    before = tiny_model.next_token_logits(ids)
    with tiny_model.ablation([HeadRef(1, 2)]):
        during = tiny_model.next_token_logits(ids)
    after = tiny_model.next_token_logits(ids)
    assert (during - before).abs().max() > 1e-4
    assert torch.equal(before, after)
    assert all(not p._forward_pre_hooks for p in attention_output_projections(tiny_model.model))


def test_hooks_are_removed_even_on_error(tiny_model: TargetModel):
    with pytest.raises(RuntimeError), tiny_model.ablation([HeadRef(0, 0), HeadRef(3, 3)]):
        raise RuntimeError("boom")
    assert all(not p._forward_pre_hooks for p in attention_output_projections(tiny_model.model))


def test_ablation_equals_zeroing_o_proj_columns(tiny_model: TargetModel, ids: list[int]):
    heads = [HeadRef(0, 1), HeadRef(2, 3), HeadRef(2, 0)]
    with tiny_model.ablation(heads):
        hooked = tiny_model.capture([ids], full_logits=True).logits
    edited = build_tiny_starcoder2("eager")
    d = tiny_model.info.head_dim
    with torch.no_grad():
        for ref in heads:
            edited.model.layers[ref.layer].self_attn.o_proj.weight[:, ref.head * d : (ref.head + 1) * d] = 0
    reference = (
        TargetModel(edited, tiny_model.tokenizer, name="edited").capture([ids], full_logits=True).logits
    )
    assert (hooked - reference).abs().max().item() <= 1e-5


def test_generate_without_ablation_reproduces_baseline(tiny_model: TargetModel, ids: list[int]):
    base = tiny_model.generate(ids[:30], 12)
    again = tiny_model.generate(ids[:30], 12, ablate=[])
    assert again.new_ids == base.new_ids and len(base.new_ids) >= 1
    assert torch.equal(again.first_logits, base.first_logits)
    assert torch.allclose(base.first_logits, tiny_model.next_token_logits(ids[:30]), atol=1e-5)


def test_generate_with_ablation_uses_the_hooks_through_the_kv_cache(tiny_model: TargetModel, ids: list[int]):
    heads = [HeadRef(layer, h) for layer in range(4) for h in range(4)]
    ablated = tiny_model.generate(ids[:30], 6, ablate=heads)
    with tiny_model.ablation(heads):
        manual = []
        prompt = list(ids[:30])
        for _ in range(6):
            token = int(tiny_model.next_token_logits(prompt).argmax())
            manual.append(token)
            prompt.append(token)
            if token in tiny_model.info.eos_ids:
                break
    assert ablated.new_ids == manual


def test_generate_stops_at_stop_token(tiny_model: TargetModel, ids: list[int]):
    first = tiny_model.generate(ids[:30], 1).new_ids[0]
    out = tiny_model.generate(ids[:30], 10, stop_ids=[first])
    assert out.new_ids == [first] and out.stopped_by == "stop_token"


def test_bad_inputs_are_rejected(tiny_model: TargetModel):
    with pytest.raises(InvalidInput):
        tiny_model.capture([])
    with pytest.raises(InvalidInput):
        tiny_model.capture([[]])
    with pytest.raises(InvalidInput, match="outside"):
        tiny_model.capture([[1, 2, 99999]])
    with pytest.raises(InvalidInput, match="at most"):
        tiny_model.capture([[5] * (tiny_model.info.context_length + 1)])
    with pytest.raises(HeadOutOfRange):
        tiny_model.generate([5, 6], 2, ablate=[HeadRef(4, 0)])


def test_tiny_model_is_the_same_in_every_process():
    a = build_tiny_starcoder2()
    b = build_tiny_starcoder2()
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("equal_lengths", [True, False])
def test_capture_continuations_equal_generate(tiny_model: TargetModel, ids: list[int], equal_lengths: bool):
    seqs = [ids[:40], ids[10:50], ids[3:43]] if equal_lengths else [ids[:40], ids[10:35], ids[3:43]]
    budgets = [6, 1, 3]
    cap = tiny_model.capture(seqs, continue_tokens=budgets)
    for seq, n, got in zip(seqs, budgets, cap.continuations, strict=True):
        assert got == tiny_model.generate(seq, n).new_ids
    plain = tiny_model.capture(seqs)
    assert torch.equal(plain.attention, cap.attention) and plain.continuations == []


def test_capture_continuations_stop_at_stop_tokens(tiny_model: TargetModel, ids: list[int]):
    first = tiny_model.generate(ids[:40], 1).new_ids[0]
    cap = tiny_model.capture([ids[:40], ids[1:41]], continue_tokens=[5, 5], stop_ids=[first])
    assert cap.continuations[0] == [first]


def test_batched_next_token_logits_equal_single_ones(tiny_model: TargetModel, ids: list[int]):
    seqs = [ids[:30], ids[4:20], ids[7:37]]
    heads = [HeadRef(1, 1), HeadRef(3, 0)]
    batched = tiny_model.next_token_logits_batch(seqs, ablate=heads)
    for row, seq in zip(batched, seqs, strict=True):
        assert torch.allclose(row, tiny_model.next_token_logits(seq, ablate=heads), atol=1e-5)
