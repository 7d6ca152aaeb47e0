"""The model-family registry: each family's FIM spelling is detected in real tokenizers, unknown spellings
fail loudly, left-to-right models stay left-to-right, and a new family is one registration."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from attnlens.contracts.models import (
    L2R,
    MODEL_FAMILIES,
    PRESETS,
    FimSpec,
    FimTokens,
    ModelFamily,
    ModelPreset,
    fim_tokens_from_vocab,
    register_family,
    register_preset,
    unregister_family,
)
from attnlens.errors import UnknownFimSpelling, UnsupportedArchitecture
from attnlens.mining import TokenTable, fim_tokens_of
from attnlens.model import TargetModel
from attnlens.model.tiny import build_tiny_starcoder2

JAVA = "public int max(int a, int b) { return a >= b ? a : b; }\nclass A { void f() { g(1); } }\n" * 4

# The spellings as the real tokenizers hold them, written out here (not read from the registry), so a
# typo in the registry fails these tests.
SPELLINGS = {
    "starcoder2": ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    "qwen2.5-coder": ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    "deepseek-coder": (
        "<\uff5cfim\u2581begin\uff5c>",
        "<\uff5cfim\u2581hole\uff5c>",
        "<\uff5cfim\u2581end\uff5c>",
    ),
    "codellama": ("\u2581<PRE>", "\u2581<SUF>", "\u2581<MID>"),
}


def real_tokenizer(specials: list[str], *, sentencepiece_style: bool = False) -> PreTrainedTokenizerFast:
    """A small BPE trained on Java with `specials` as special tokens at ids 0.., like the real models:
    byte-level (StarCoder2, Qwen, DeepSeek) or Metaspace (CodeLlama's SentencePiece `▁` pieces)."""
    tokenizer = Tokenizer(models.BPE(unk_token=None if not sentencepiece_style else "<unk>"))
    if sentencepiece_style:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        alphabet: list[str] = []
        specials = ["<unk>", *specials]
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    tokenizer.train_from_iterator([JAVA], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=specials[0], pad_token=specials[0])


def token_id(tokenizer: PreTrainedTokenizerFast, token: str) -> int:
    return tokenizer.get_vocab()[token]


@pytest.mark.parametrize("family", sorted(SPELLINGS))
def test_each_family_spelling_is_detected_in_a_real_tokenizer(family: str):
    prefix, suffix, middle = SPELLINGS[family]
    tokenizer = real_tokenizer(["<eos>", prefix, suffix, middle], sentencepiece_style=family == "codellama")
    ids = [token_id(tokenizer, token) for token in (prefix, suffix, middle)]
    # Each marker is one token of this vocabulary, and encoding its text gives that token.
    assert len(set(ids)) == 3 and tokenizer.unk_token_id not in ids
    assert [tokenizer(t, add_special_tokens=False)["input_ids"] for t in (prefix, suffix, middle)] == [
        [i] for i in ids
    ]
    detected = fim_tokens_from_vocab(tokenizer.get_vocab())
    assert detected.family is not None and detected.family.name == family
    assert detected.fim == FimTokens(prefix=ids[0], middle=ids[2], suffix=ids[1])
    assert fim_tokens_of(tokenizer) == detected.fim


@pytest.mark.parametrize("family", ["qwen2.5-coder", "deepseek-coder"])
def test_model_info_uses_the_registry(family: str):
    """A model with another family's tokenizer gets that family's FIM ids (not only StarCoder2's)."""
    prefix, suffix, middle = SPELLINGS[family]
    tokenizer = real_tokenizer(["<eos>", prefix, suffix, middle])
    info = TargetModel(build_tiny_starcoder2(), tokenizer, name="tiny").info
    assert info.family == family
    assert info.fim == FimTokens(*(token_id(tokenizer, t) for t in (prefix, middle, suffix)))
    assert info.to_dict()["supports_fim"] is True and info.to_dict()["family"] == family


def test_tiny_starcoder2_keeps_fim(tiny_model: TargetModel):
    assert tiny_model.info.family == "starcoder2"
    assert tiny_model.info.fim == FimTokens(prefix=1, middle=2, suffix=3)


def test_byte_level_families_can_be_mined():
    """The mining token table accepts the byte-level families' tokenizers and keeps their markers special."""
    prefix, suffix, middle = SPELLINGS["qwen2.5-coder"]
    table = TokenTable(real_tokenizer(["<eos>", prefix, suffix, middle]))
    fim = fim_tokens_of(table.tokenizer)
    assert fim is not None and {fim.prefix, fim.middle, fim.suffix} <= table.special_ids
    # Source text that spells a marker is never read as the marker.
    assert fim.prefix not in table.encode(f'String s = "{prefix}";')


@pytest.mark.parametrize(
    "tokens",
    [
        ["<fim-begin>", "<fim-hole>", "<fim-end>"],
        ["<|fim_start|>"],
        ["<fim_prefix>", "<fim_suffix>"],  # StarCoder2's spelling with the middle marker missing
        ["\u2581<PRE>", "\u2581<SUF>"],  # CodeLlama's, incomplete
        ["<PRE>", "<SUF>", "<MID>"],  # CodeLlama's names without the word-start mark
    ],
)
def test_unknown_fim_spelling_fails_loudly(tokens: list[str]):
    vocab = {"<eos>": 0, "a": 1, **{t: i + 2 for i, t in enumerate(tokens)}}
    with pytest.raises(UnknownFimSpelling, match="register_family") as caught:
        fim_tokens_from_vocab(vocab)
    assert all(t in caught.value.message for t in tokens)
    assert isinstance(caught.value, UnsupportedArchitecture)


def test_unknown_spelling_in_a_real_tokenizer_stops_model_loading():
    tokenizer = real_tokenizer(["<eos>", "<|fim_start|>", "<|fim_hole|>", "<|fim_stop|>"])
    with pytest.raises(UnknownFimSpelling, match="fim_start"):
        TargetModel(build_tiny_starcoder2(), tokenizer, name="tiny")
    with pytest.raises(UnknownFimSpelling):
        fim_tokens_of(tokenizer)


@pytest.mark.parametrize(
    "vocab",
    [
        # SmolLM2's special tokens (checked against its real tokenizer): none is a FIM marker.
        {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "<filename>": 6, "<file_sep>": 5},
        # Ordinary pieces that merely contain the letters or an HTML tag.
        {"fim": 0, "\u0120fim": 1, "Fim": 2, "<pre>": 3, "\u0120<": 4, "<fim": 5},
        # A pad token alone cannot build a FIM prompt.
        {"<eos>": 0, "<fim_pad>": 1},
    ],
)
def test_no_fim_markers_means_left_to_right(vocab: dict[str, int]):
    detected = fim_tokens_from_vocab(vocab)
    assert detected.fim is None
    assert detected.family is not None and detected.family.name == L2R and not detected.family.supports_fim


def test_left_to_right_tokenizer_stays_left_to_right():
    tokenizer = real_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    assert fim_tokens_of(tokenizer) is None
    assert TargetModel(build_tiny_starcoder2(), tokenizer, name="tiny").info.family == L2R


@pytest.fixture
def toy_family() -> Iterator[ModelFamily]:
    family = ModelFamily("toy", FimSpec("<fim-begin>", "<fim-hole>", "<fim-end>"), ("toy",), "a test family")
    yield family
    PRESETS.pop("toy-1b", None)
    MODEL_FAMILIES.pop("toy", None)


def test_registering_a_family_makes_its_spelling_detected(toy_family: ModelFamily):
    tokenizer = real_tokenizer(["<eos>", "<fim-begin>", "<fim-hole>", "<fim-end>"])
    with pytest.raises(UnknownFimSpelling):
        fim_tokens_of(tokenizer)
    register_family(toy_family)
    detected = fim_tokens_from_vocab(tokenizer.get_vocab())
    assert detected.family == toy_family
    assert detected.fim == FimTokens(
        prefix=token_id(tokenizer, "<fim-begin>"),
        middle=token_id(tokenizer, "<fim-end>"),
        suffix=token_id(tokenizer, "<fim-hole>"),
    )
    register_preset(ModelPreset("toy-1b", "toy/toy-1b", "toy", "a test preset"))
    with pytest.raises(ValueError, match="used by presets"):
        unregister_family("toy")
    del PRESETS["toy-1b"]
    assert unregister_family("toy") == toy_family
    with pytest.raises(UnknownFimSpelling):
        fim_tokens_of(tokenizer)


def test_registry_refuses_duplicates(toy_family: ModelFamily):
    with pytest.raises(ValueError, match="already registered"):
        register_family(ModelFamily("starcoder2", None, (), "again"))
    same_spelling = FimSpec("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
    with pytest.raises(ValueError, match="qwen2.5-coder"):
        register_family(ModelFamily("qwen-copy", same_spelling, (), "copy"))
    with pytest.raises(ValueError, match="unknown family"):
        register_preset(ModelPreset("toy-1b", "toy/toy-1b", toy_family.name, "family not registered"))
    assert "qwen-copy" not in MODEL_FAMILIES and "toy-1b" not in PRESETS


def test_model_type_breaks_ties_between_spellings():
    vocab = {t: i for i, t in enumerate((*SPELLINGS["starcoder2"], *SPELLINGS["qwen2.5-coder"]))}
    assert fim_tokens_from_vocab(vocab).family == MODEL_FAMILIES["starcoder2"]
    detected = fim_tokens_from_vocab(vocab, model_type="qwen2")
    assert detected.family == MODEL_FAMILIES["qwen2.5-coder"] and detected.fim == FimTokens(3, 5, 4)


def test_presets_name_registered_families():
    assert {p.family for p in PRESETS.values()} == set(MODEL_FAMILIES)
    assert PRESETS["smollm2"].family == L2R and PRESETS["tiny-starcoder2"].family == "starcoder2"
    hub = {p.name: p.hub_id for p in PRESETS.values()}
    assert hub["smollm2"] is None and hub["tiny-starcoder2"] is None
    assert hub["qwen2.5-coder-1.5b"] == "Qwen/Qwen2.5-Coder-1.5B"
    assert hub["deepseek-coder-6.7b"] == "deepseek-ai/deepseek-coder-6.7b-base"
    assert hub["codellama-7b"] == "codellama/CodeLlama-7b-hf"
    assert all(p.hub_id is None or p.hub_id.count("/") == 1 for p in PRESETS.values())


def test_fim_spec_accepts_psm_only():
    with pytest.raises(ValueError, match="PSM"):
        FimSpec("<a>", "<b>", "<c>", order="spm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="different"):
        FimSpec("<a>", "<a>", "<c>")


def test_contracts_import_without_torch():
    code = (
        "import sys, attnlens.contracts.models\n"
        "heavy = [m for m in ('torch', 'transformers', 'tokenizers', 'faiss') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_re_exports_are_the_contract_type():
    from attnlens.model import FimTokens as from_model
    from attnlens.model.target import FimTokens as from_target

    assert from_model is FimTokens and from_target is FimTokens


@pytest.mark.slow
def test_smollm2_stays_left_to_right(smollm2: TargetModel):
    # Its vocabulary holds chat and repository markers (`<|im_start|>`, `<filename>` ...) but nothing
    # FIM-like, so it keeps left-to-right prompts, as before the registry.
    assert smollm2.info.fim is None and smollm2.info.family == L2R
