"""Tiny random-weight models of three real architectures, each with a tokenizer spelling its family's FIM
markers, so tests (and `attnlens models verify`) exercise every family's code paths in well under a second.

| preset            | config            | layers x heads | KV heads | FIM family     |
| ----------------- | ----------------- | -------------- | -------- | -------------- |
| `tiny-starcoder2` | Starcoder2Config  | 4 x 4          | 2        | starcoder2     |
| `tiny-qwen2`      | Qwen2Config       | 4 x 4          | 2        | qwen2.5-coder  |
| `tiny-llama`      | LlamaConfig       | 4 x 4          | 1        | deepseek-coder |

All three tokenizers are the one shipped 1024-token byte-level BPE (trained on Java); the Qwen and Llama
variants rename its five special tokens (ids 0-4) to their family's spellings at load time, so mining, the
token table and FIM detection see the same vocabulary under each family's names, and no second asset ships.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from attnlens.errors import ModelUnavailable

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

TINY_SEED = 1234
ASSETS = Path(__file__).parent / "assets"
TINY_TOKENIZER_FILE = ASSETS / "tiny_starcoder2_tokenizer.json"

# Shared sizes: big enough for GQA and a 1024-token context, small enough to build in milliseconds.
_SIZES: dict[str, Any] = {
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "max_position_embeddings": 1024,
}


@dataclass(frozen=True)
class SpecialTokens:
    """The five special tokens of the shipped tokenizer, by id, in one family's spelling."""

    end: str  # id 0: end of text (eos and unk)
    prefix: str  # id 1
    middle: str  # id 2
    suffix: str  # id 3
    extra: str  # id 4: the pad token, or the begin-of-sentence token of a family without a pad token
    extra_is_bos: bool = False

    @property
    def by_id(self) -> tuple[str, str, str, str, str]:
        return (self.end, self.prefix, self.middle, self.suffix, self.extra)

    @property
    def bos(self) -> str:
        return self.extra if self.extra_is_bos else self.end

    @property
    def pad(self) -> str:
        return self.end if self.extra_is_bos else self.extra


STARCODER2_SPECIALS = SpecialTokens(
    "<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"
)
# Qwen2.5-Coder's own names (its vocabulary has `<|fim_pad|>` as well).
QWEN_SPECIALS = SpecialTokens(
    "<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>"
)
# DeepSeek-Coder's: fullwidth bars U+FF5C and U+2581 for the space. It has no pad token, so id 4 is its
# begin-of-sentence token and padding reuses the end token (the tiny Llama config says the same).
DEEPSEEK_SPECIALS = SpecialTokens(
    "<\uff5cend\u2581of\u2581sentence\uff5c>",
    "<\uff5cfim\u2581begin\uff5c>",
    "<\uff5cfim\u2581end\uff5c>",
    "<\uff5cfim\u2581hole\uff5c>",
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
    extra_is_bos=True,
)


@cache
def _renamed_tokenizer_json(specials: SpecialTokens) -> str:
    """The shipped tokenizer's JSON with its special tokens (ids 0-4) spelled as `specials` says."""
    data = json.loads(TINY_TOKENIZER_FILE.read_text())
    vocab: dict[str, int] = data["model"]["vocab"]
    by_id = {index: token for token, index in vocab.items()}
    names = specials.by_id
    clashes = [name for index, name in enumerate(names) if vocab.get(name, index) != index]
    if clashes:
        raise ModelUnavailable(f"the tiny tokenizer already holds {clashes} as ordinary tokens.")
    for index, name in enumerate(names):
        del vocab[by_id[index]]
        vocab[name] = index
    for added in data["added_tokens"]:
        added["content"] = names[added["id"]]
    return json.dumps(data)


def tiny_tokenizer_with(specials: SpecialTokens) -> PreTrainedTokenizerBase:
    """The shipped 1024-token byte-level BPE with `specials` at ids 0-4."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_renamed_tokenizer_json(specials)),
        bos_token=specials.bos,
        eos_token=specials.end,
        unk_token=specials.end,
        pad_token=specials.pad,
        additional_special_tokens=[specials.prefix, specials.middle, specials.suffix],
    )


def tiny_starcoder2_tokenizer() -> PreTrainedTokenizerBase:
    """A 1024-token byte-level BPE trained on Java, with StarCoder2's special tokens at its ids
    (`<|endoftext|>`=0, `<fim_prefix>`=1, `<fim_middle>`=2, `<fim_suffix>`=3, `<fim_pad>`=4).

    The real StarCoder2 tokenizer cannot be installed here; this one is shipped (built by
    `scripts/build_tiny_tokenizer.py`) so tests exercise the same FIM code paths.
    """
    from transformers import PreTrainedTokenizerFast

    s = STARCODER2_SPECIALS
    return PreTrainedTokenizerFast(
        tokenizer_file=str(TINY_TOKENIZER_FILE),
        bos_token=s.bos,
        eos_token=s.end,
        unk_token=s.end,
        pad_token=s.pad,
        additional_special_tokens=[s.prefix, s.middle, s.suffix],
    )


def tiny_qwen2_tokenizer() -> PreTrainedTokenizerBase:
    """The tiny tokenizer spelling Qwen2.5-Coder's markers: `<|fim_prefix|>`=1, `<|fim_middle|>`=2,
    `<|fim_suffix|>`=3."""
    return tiny_tokenizer_with(QWEN_SPECIALS)


def tiny_deepseek_tokenizer() -> PreTrainedTokenizerBase:
    """The tiny tokenizer spelling DeepSeek-Coder's markers: `<｜fim▁begin｜>`=1, `<｜fim▁end｜>`=2,
    `<｜fim▁hole｜>`=3."""
    return tiny_tokenizer_with(DEEPSEEK_SPECIALS)


def tiny_starcoder2_config() -> PretrainedConfig:
    """A real Starcoder2Config, tiny: 4 layers, 4 query heads, 2 KV heads (GQA), hidden 128."""
    from transformers import Starcoder2Config

    return Starcoder2Config(
        **_SIZES, num_key_value_heads=2, bos_token_id=0, eos_token_id=0, pad_token_id=4,
        sliding_window=None, use_bias=True,
    )  # fmt: skip


def tiny_qwen2_config() -> PretrainedConfig:
    """A real Qwen2Config, tiny: 4 layers, 4 query heads, 2 KV heads (GQA), hidden 128."""
    from transformers import Qwen2Config

    return Qwen2Config(
        **_SIZES, num_key_value_heads=2, bos_token_id=0, eos_token_id=0, pad_token_id=4,
        tie_word_embeddings=False, use_sliding_window=False,
    )  # fmt: skip


def tiny_llama_config() -> PretrainedConfig:
    """A real LlamaConfig, tiny: 4 layers, 4 query heads sharing 1 KV head (GQA with one group)."""
    from transformers import LlamaConfig

    return LlamaConfig(**_SIZES, num_key_value_heads=1, bos_token_id=4, eos_token_id=0, pad_token_id=0)


def _model_class(name: str) -> Callable[[], type[PreTrainedModel]]:
    # Looked up when a model is built, so importing this module does not import every architecture.
    def resolve() -> type[PreTrainedModel]:
        import transformers

        return cast("type[PreTrainedModel]", getattr(transformers, name))

    return resolve


@dataclass(frozen=True)
class TinyArchitecture:
    """How to build one tiny preset: its config, its tokenizer and its model class."""

    config: Callable[[], PretrainedConfig]
    tokenizer: Callable[[], PreTrainedTokenizerBase]
    model_class: Callable[[], type[PreTrainedModel]]


TINY_ARCHITECTURES: dict[str, TinyArchitecture] = {
    "tiny-starcoder2": TinyArchitecture(
        tiny_starcoder2_config, tiny_starcoder2_tokenizer, _model_class("Starcoder2ForCausalLM")
    ),
    "tiny-qwen2": TinyArchitecture(tiny_qwen2_config, tiny_qwen2_tokenizer, _model_class("Qwen2ForCausalLM")),
    "tiny-llama": TinyArchitecture(
        tiny_llama_config, tiny_deepseek_tokenizer, _model_class("LlamaForCausalLM")
    ),
}


def _architecture(name: str) -> TinyArchitecture:
    try:
        return TINY_ARCHITECTURES[name]
    except KeyError:
        raise ModelUnavailable(
            f"no tiny model named {name!r}; tiny presets: {', '.join(TINY_ARCHITECTURES)}."
        ) from None


def tiny_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of the tiny preset `name`."""
    return _architecture(name).tokenizer()


def build_tiny(name: str, attn_implementation: str = "eager") -> PreTrainedModel:
    """The tiny preset `name` with random weights from a fixed seed (the same weights in every process)."""
    spec = _architecture(name)
    config = spec.config()
    config._attn_implementation = attn_implementation
    model_class = spec.model_class()
    # fork_rng restores the global generator afterwards, so building a tiny model never shifts the random
    # numbers of the code around it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = model_class(config)
    return model


def build_tiny_starcoder2(attn_implementation: str = "eager") -> PreTrainedModel:
    """The tiny StarCoder2 with random weights from a fixed seed (same weights in every process)."""
    return build_tiny("tiny-starcoder2", attn_implementation)
