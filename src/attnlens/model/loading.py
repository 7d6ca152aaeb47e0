"""Loading a Hugging Face causal LM with eager attention: the embedded SmolLM2, a tiny preset
(`attnlens.model.tiny`), any hub id or local folder."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from attnlens.contracts.models import PRESETS, ModelPreset
from attnlens.errors import ModelUnavailable
from attnlens.model.presets import packaged_gguf
from attnlens.model.tiny import build_tiny, tiny_tokenizer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


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


def packaged_folder(preset: ModelPreset, models_dir: Path) -> Path:
    """The safetensors cache of a packaged model (SmolLM2, Gemma 3 270M), converted from its package's GGUF
    on first use.

    Dequantising a GGUF takes 20-60 s; the converted folder then loads in a second or two. The conversion
    writes to a temporary folder and renames it, so a killed conversion leaves nothing behind.
    """
    packaged = preset.packaged
    if packaged is None:
        raise ModelUnavailable(f"{preset.name!r} is not a packaged model.")
    target = models_dir / packaged.cache_name
    if (target / "model.safetensors").is_file():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(models_dir / f".{packaged.cache_name}.lock"):
        if (target / "model.safetensors").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f".{packaged.cache_name}-", dir=models_dir))
        tmp.chmod(0o755)
        try:
            gguf = packaged_gguf(packaged, tmp)
            log.info("converting %s to safetensors under %s (once, up to a minute)", gguf.name, target)
            folder = str(gguf.parent)
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name)
            quantised = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=gguf.name, attn_implementation="eager", dtype=torch.float32
            )
            config = quantised.config
            # A GGUF-loaded model refuses save_pretrained; a plain model of its class with the same
            # weights does not.
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            plain = type(quantised)(config)
            plain.load_state_dict(quantised.state_dict())
            # functools.wraps on PreTrainedModel.to makes typeshed expect the model as first argument.
            plain = plain.to(torch.bfloat16)  # type: ignore[arg-type]
            del quantised
            out = tmp / "model"
            plain.save_pretrained(out)
            tokenizer.save_pretrained(out)
            if target.exists():
                shutil.rmtree(target)
            os.replace(out, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # the reassembled GGUF too: the cache replaces it
        log.info("converted %s in %.1f s", preset.name, time.perf_counter() - started)
    return target


def load_tokenizer(
    name_or_path: str, *, models_dir: Path, revision: str | None = None
) -> PreTrainedTokenizerBase:
    """Only the tokenizer of a preset, hub id or folder (no weights; for mining)."""
    from transformers import AutoTokenizer

    preset = PRESETS.get(name_or_path)
    if preset is not None and preset.source == "tiny":
        return tiny_tokenizer(preset.name)
    if preset is not None and preset.source == "embedded":
        return AutoTokenizer.from_pretrained(str(packaged_folder(preset, models_dir)))
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
        tiny = build_tiny(preset.name, attn_implementation).to(dtype)  # type: ignore[arg-type]
        return tiny, tiny_tokenizer(preset.name), preset.name
    if preset is not None and preset.source == "embedded":
        source, display, cache_dir = str(packaged_folder(preset, models_dir)), preset.name, None
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
