"""`attnlens models verify`: it passes on the three tiny architectures and on SmolLM2, and it fails on real
models broken the ways it guards against (attention that sees the future, an ablation that outlives its
context), so its PASS means something."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM
from transformers.models.llama import modeling_llama
from typer.testing import CliRunner

from attnlens.atlas.verify import CheckResult, VerifyReport, attention_implementation, verify_model
from attnlens.cli import app
from attnlens.heads import HeadRef
from attnlens.model import TargetModel
from attnlens.model.ablation import ablate_heads, attention_output_projections
from attnlens.model.tiny import (
    SpecialTokens,
    build_tiny,
    tiny_llama_config,
    tiny_tokenizer,
    tiny_tokenizer_with,
)
from tests.conftest import MODELS_CACHE

CHECKS = (
    "eager = sdpa logits",
    "rows sum to 1",
    "causal",
    "one pattern per query head",
    "FIM round trip",
    "ablation changes logits",
    "ablation removed",
)


def by_name(report: VerifyReport) -> dict[str, CheckResult]:
    assert tuple(c.check for c in report.checks) == CHECKS
    return {c.check: c for c in report.checks}


def tiny_target(name: str = "tiny-llama") -> TargetModel:
    return TargetModel(build_tiny(name), tiny_tokenizer(name), name=name)


@pytest.mark.parametrize("preset", ["tiny-starcoder2", "tiny-qwen2", "tiny-llama"])
def test_verify_passes_on_every_tiny_architecture(preset: str):
    target = TargetModel.load(preset, models_dir=MODELS_CACHE, device="cpu")
    report = verify_model(target)
    checks = by_name(report)
    assert report.passed and all(c.status == "PASS" for c in report.checks), report.checks
    assert (report.model, report.n_layers, report.n_heads, report.n_windows) == (preset, 4, 4, 3)
    assert float(checks["eager = sdpa logits"].measured) <= 1e-5
    assert checks["causal"].measured == "0.00e+00"
    assert checks["one pattern per query head"].measured == "4 x 4"
    assert f"{target.info.n_kv_heads} KV head" in checks["one pattern per query head"].detail
    assert checks["FIM round trip"].measured == "3/3 windows"
    assert target.info.family is not None and target.info.family in checks["FIM round trip"].detail
    assert float(checks["ablation changes logits"].measured) > 0
    assert checks["ablation removed"].measured == "0.00e+00"
    assert "0 hooks left" in checks["ablation removed"].detail
    # Verifying leaves the model as it was: eager attention, no hooks.
    assert target.model.config._attn_implementation == "eager"
    assert all(not p._forward_pre_hooks for p in attention_output_projections(target.model))


def run_cli(*args: str, data_dir: Path):
    # The CLI points the root logger at the runner's stream, which is closed afterwards; later logging in
    # this process would then fail to write, so the logger is put back as it was.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(app, ["--data-dir", str(data_dir), "models", *args], catch_exceptions=False)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_cli_prints_the_table_and_exits_0(tmp_path: Path):
    done = run_cli("verify", "tiny-qwen2", data_dir=tmp_path)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("check "))
    assert lines[header].split() == ["check", "result", "measured", "detail"]
    rows = lines[header + 1 : header + 1 + len(CHECKS)]
    for check, row in zip(CHECKS, rows, strict=True):
        assert row.startswith(check) and row[len(check) :].split()[0] == "PASS"
    assert "qwen2.5-coder" in done.output and "all 7 checks passed" in done.output


def test_cli_without_a_subcommand_still_lists_presets(tmp_path: Path):
    done = run_cli(data_dir=tmp_path)
    assert done.exit_code == 0, done.output
    names = {line.split()[0] for line in done.output.splitlines() if line and not line.startswith(" ")}
    assert {"tiny-starcoder2", "tiny-qwen2", "tiny-llama", "smollm2"} <= names


@pytest.fixture
def future_leaking_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Llama's eager attention with the causal mask dropped (upstream shipped such bugs): every token also
    sees the tokens after it. Patched where the attention layers look it up, for real forward passes."""
    original = modeling_llama.eager_attention_forward

    def without_mask(module, query, key, value, attention_mask, *args, **kwargs):
        return original(module, query, key, value, None, *args, **kwargs)

    monkeypatch.setattr(modeling_llama, "eager_attention_forward", without_mask)


def test_attention_that_sees_the_future_fails(future_leaking_eager: None, tmp_path: Path):
    report = verify_model(tiny_target())
    checks = by_name(report)
    assert not report.passed
    assert checks["causal"].status == "FAIL" and float(checks["causal"].measured) > 0
    assert "causal mask" in checks["causal"].detail
    # sdpa still masks the future, so the logits disagree with the model's own attention.
    assert (
        checks["eager = sdpa logits"].status == "FAIL"
        and float(checks["eager = sdpa logits"].measured) > 1e-3
    )
    assert checks["rows sum to 1"].status == "PASS"  # still a softmax, only over the wrong keys
    assert {c.check for c in report.failed} == {"causal", "eager = sdpa logits"}
    # The command says so and exits 1.
    done = run_cli("verify", "tiny-llama", data_dir=tmp_path)
    assert done.exit_code == 1, done.output
    assert "2 of 7 checks FAILED" in done.output and "do not build atlases" in done.output


class AblationThatStays(TargetModel):
    """A wrapper whose ablation enters the hooks and never removes them (a missing `finally`)."""

    stuck: list[AbstractContextManager[None]]

    def ablation(self, heads: Iterable[HeadRef]) -> AbstractContextManager[None]:
        refs = frozenset(heads)
        if refs:
            hooks = ablate_heads(self.model, refs, self.info.head_dim)
            hooks.__enter__()
            # Kept: a collected generator would close and run its `finally`, removing the hooks after all.
            self.stuck.append(hooks)
        return nullcontext()


def test_an_ablation_that_outlives_its_context_fails():
    target = AblationThatStays(build_tiny("tiny-qwen2"), tiny_tokenizer("tiny-qwen2"), name="tiny-qwen2")
    target.stuck = []
    checks = by_name(verify_model(target))
    assert checks["ablation changes logits"].status == "PASS"
    removed = checks["ablation removed"]
    assert removed.status == "FAIL" and float(removed.measured) > 0
    assert "1 hook left" in removed.detail and "outlived its context" in removed.detail


class LlamaWithoutSdpa(LlamaForCausalLM):
    _supports_sdpa = False


def test_an_architecture_without_sdpa_is_skipped_not_failed():
    config = tiny_llama_config()
    config._attn_implementation = "eager"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaWithoutSdpa(config)
    report = verify_model(TargetModel(model, tiny_tokenizer("tiny-llama"), name="no-sdpa"))
    skipped = by_name(report)["eager = sdpa logits"]
    assert skipped.status == "SKIP" and "no sdpa" in skipped.detail
    assert report.passed


def test_a_left_to_right_model_passes_the_fim_check():
    # SmolLM2's special tokens in the tiny vocabulary: no FIM markers, so prompts are left-to-right.
    specials = SpecialTokens("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<filename>", "<file_sep>")
    target = TargetModel(build_tiny("tiny-llama"), tiny_tokenizer_with(specials), name="l2r")
    assert target.info.fim is None
    report = verify_model(target)
    fim = by_name(report)["FIM round trip"]
    assert (fim.status, fim.detail) == ("PASS", "left-to-right: no FIM markers")
    assert report.passed


def test_switching_attention_always_switches_back():
    target = tiny_target()
    with pytest.raises(RuntimeError), attention_implementation(target.model, "sdpa"):
        assert target.model.config._attn_implementation == "sdpa"
        raise RuntimeError("boom")
    assert target.model.config._attn_implementation == "eager"
    assert target.capture([[5, 6, 7]]).attention.shape == (1, 4, 4, 3, 3)


@pytest.mark.slow
def test_verify_passes_on_smollm2(smollm2: TargetModel):
    report = verify_model(smollm2)
    checks = by_name(report)
    assert report.passed and all(c.status == "PASS" for c in report.checks), report.checks
    assert checks["one pattern per query head"].measured == "9 x 30"
    assert "3 KV heads" in checks["one pattern per query head"].detail
    assert checks["FIM round trip"].detail == "left-to-right: no FIM markers"
    assert checks["causal"].measured == "0.00e+00" and checks["ablation removed"].measured == "0.00e+00"
