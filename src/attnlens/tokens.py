"""Token ids -> display strings without torch (the backend shows tokens but never loads a model).

Uses the `tokenizers` library directly on a model's `tokenizer.json`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

from attnlens.contracts.models import PRESETS
from attnlens.errors import ModelUnavailable

_TINY_TOKENIZER = Path(__file__).parent / "model" / "assets" / "tiny_starcoder2_tokenizer.json"


def tokenizer_file(model_name: str, models_dir: Path) -> Path:
    """Where the `tokenizer.json` of a preset, folder or cached hub model is."""
    preset = PRESETS.get(model_name)
    if preset is not None and preset.source == "tiny":
        return _TINY_TOKENIZER
    if preset is not None and preset.packaged is not None:  # converted by attnlens.model.loading
        candidate = models_dir / preset.packaged.cache_name / "tokenizer.json"
    elif preset is None and Path(model_name).is_dir():
        candidate = Path(model_name) / "tokenizer.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        repo = preset.source if preset is not None else model_name
        hit = try_to_load_from_cache(repo, "tokenizer.json", cache_dir=str(models_dir / "hub"))
        candidate = Path(hit) if isinstance(hit, str) else Path("/nonexistent")
    if not candidate.is_file():
        raise ModelUnavailable(
            f"no tokenizer.json for {model_name!r} under {models_dir}; load the model once in the worker "
            "(it writes the cache) and retry."
        )
    return candidate


@lru_cache(maxsize=8)
def _load(path: str) -> Tokenizer:
    return Tokenizer.from_file(path)


class TokenDecoder:
    """Decodes ids of one model's vocabulary, one display string per token."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    @classmethod
    def for_model(cls, model_name: str, models_dir: Path) -> TokenDecoder:
        return cls(_load(str(tokenizer_file(model_name, models_dir))))

    def tokens(self, ids: list[int]) -> list[str]:
        """Each token as the text it stands for (byte-level pieces decoded, special tokens kept)."""
        return [self._tokenizer.decode([i], skip_special_tokens=False) for i in ids]

    def text(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=False)
