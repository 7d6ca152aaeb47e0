"""Loading an AP-MAE checkpoint: the shipped default, any folder, a released checkpoint by hub id
(`LaughingLogits/AP-MAE-SC2-3B`, `-7B`, `-15B`), or `Settings.apmae`."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from attnlens.errors import CheckpointMismatch, InvalidInput, ModelUnavailable

if TYPE_CHECKING:
    from attnlens.apmae.model import APMAE
    from attnlens.config import Settings

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "default"
RELEASED_CHECKPOINTS = {
    # The paper's checkpoints and the StarCoder2 size each was trained on (paper-method.md section 3.1).
    "LaughingLogits/AP-MAE-SC2-3B": "bigcode/starcoder2-3b",
    "LaughingLogits/AP-MAE-SC2-7B": "bigcode/starcoder2-7b",
    "LaughingLogits/AP-MAE-SC2-15B": "bigcode/starcoder2-15b",
}
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# A hub download fetches the config and the safetensors weights (one file, or shards with their index),
# the training record of a checkpoint made here and uploaded (eval-apmae rebuilds its test set from it), and
# pickle weights only when they are allowed; nothing else of the repository is needed.
HUB_FILES = ("config.json", "*.safetensors", "model.safetensors.index.json", "training.json")
HUB_PICKLE_FILES = ("pytorch_model*.bin", "pytorch_model.bin.index.json")
PICKLE_HINT = (
    "unpickling a file can run code, so pickle weights (pytorch_model.bin) are refused. If you trust them, "
    "set ATTNLENS_APMAE__ALLOW_PICKLE_WEIGHTS=true (in code: allow_pickle_weights=True)."
)


def is_hub_id(name_or_path: str | Path) -> bool:
    """`owner/name` that is not a path present here: a Hugging Face hub id."""
    text = str(name_or_path)
    return text != "default" and _HUB_ID.fullmatch(text) is not None and not Path(text).exists()


def embedder_label(checkpoint: str | Path) -> str:
    """How stored rows name the embeddings' origin: `default` and a hub id as they are, a folder as its
    resolved path (so two spellings of one folder are one embedding space)."""
    text = str(checkpoint)
    if text == "default" or is_hub_id(text):
        return text
    return str(Path(text).expanduser().resolve())


def checkpoint_folder(
    name_or_path: str | Path, *, models_dir: Path | None = None, allow_pickle_weights: bool = False
) -> Path:
    """`default` -> the checkpoint shipped for SmolLM2; a hub id -> its snapshot in the hub cache under
    `models_dir` (downloaded when not cached yet and the hub is reachable); anything else -> a folder."""
    if str(name_or_path) == "default":
        return DEFAULT_CHECKPOINT
    if is_hub_id(name_or_path):
        if models_dir is None:
            raise InvalidInput(
                f"{name_or_path!r} is no folder here, so it names a Hugging Face hub checkpoint, whose "
                "cache lives under the models folder: pass models_dir (Settings.models_dir), or "
                "load_apmae(settings)."
            )
        return hub_snapshot(
            str(name_or_path), models_dir=models_dir, allow_pickle_weights=allow_pickle_weights
        )
    return Path(name_or_path).expanduser()


def hub_snapshot(repo_id: str, *, models_dir: Path, allow_pickle_weights: bool = False) -> Path:
    """The cached snapshot of hub checkpoint `repo_id` under `models_dir/hub`, downloaded when missing.

    The cache is read first, without any request: a released checkpoint does not change, and a cached one
    must load offline. Only when it is absent (or holds no weights) is the hub asked; the hub client then
    honours HF_HUB_OFFLINE itself."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    cache_dir = models_dir / "hub"
    patterns = [*HUB_FILES, *(HUB_PICKLE_FILES if allow_pickle_weights else ())]
    try:
        cached = Path(
            snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=patterns, local_files_only=True)
        )
        if _weights_kind(cached) is not None and (cached / "config.json").is_file():
            return cached
    except (LocalEntryNotFoundError, HFValidationError):
        pass  # not cached (or partly): ask the hub below
    try:
        return Path(snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=patterns))
    except LocalEntryNotFoundError as exc:  # offline (HF_HUB_OFFLINE=1) or no network, and nothing cached
        raise ModelUnavailable(
            f"{repo_id!r} is no folder here, the AP-MAE checkpoint of that hub id is not in the cache "
            f"{cache_dir}, and the Hugging Face Hub cannot be reached (HF_HUB_OFFLINE=1, or no network). "
            "Run once with network access (HF_HUB_OFFLINE unset) to download it (a released AP-MAE-SC2 "
            "checkpoint is about 510 MB), or put a checkpoint folder (config.json + model.safetensors) here "
            "and point ATTNLENS_APMAE__CHECKPOINT at it."
        ) from exc
    except RepositoryNotFoundError as exc:  # also private or gated repositories
        raise ModelUnavailable(
            f"{repo_id!r} is no folder here, and the Hugging Face Hub has no public checkpoint of that name. "
            f"Use `default`, a checkpoint folder, or a released one: {', '.join(RELEASED_CHECKPOINTS)}."
        ) from exc
    except (HfHubHTTPError, HFValidationError, OSError) as exc:
        raise ModelUnavailable(f"could not download the AP-MAE checkpoint {repo_id}: {exc}") from exc


def _weights_kind(folder: Path) -> str | None:
    """`safetensors`, `pickle` (pytorch_model.bin only) or None (no weights) for a checkpoint folder."""
    if any((folder / name).is_file() for name in SAFE_WEIGHTS):
        return "safetensors"
    if any((folder / name).is_file() for name in PICKLE_WEIGHTS):
        return "pickle"
    return None


def load_apmae(
    settings_or_path: Settings | str | Path,
    device: str | torch.device = "auto",
    *,
    decoder_mode: str | None = None,
    models_dir: Path | None = None,
    allow_pickle_weights: bool = False,
) -> APMAE:
    """An AP-MAE in eval mode on `device` (`auto`: CUDA when present).

    `settings_or_path` is a `Settings` (uses `settings.apmae`: its checkpoint, pickle permission and,
    unless `device` is given, device; and `settings.models_dir`), `"default"`, a folder with config.json +
    model.safetensors, or a hub id such as `LaughingLogits/AP-MAE-SC2-3B` (cached under
    `models_dir/hub`). A released checkpoint (its config.json has no `decoder_mode`) gets the `paper`
    decoder it was trained with, unless `decoder_mode` says otherwise.
    """
    from attnlens.apmae.configuration import APMAEConfig
    from attnlens.apmae.model import APMAE
    from attnlens.config import Settings
    from attnlens.model.loading import resolve_device

    name: str | Path
    if isinstance(settings_or_path, Settings):
        name = settings_or_path.apmae.checkpoint
        models_dir = models_dir or settings_or_path.models_dir
        allow_pickle_weights = allow_pickle_weights or settings_or_path.apmae.allow_pickle_weights
        if str(device) == "auto":
            device = settings_or_path.apmae.device
    else:
        name = settings_or_path
    folder = checkpoint_folder(name, models_dir=models_dir, allow_pickle_weights=allow_pickle_weights)
    kind = _weights_kind(folder)
    if not (folder / "config.json").is_file() or kind is None:
        hint = (
            f" If {name} has only pickle weights (pytorch_model.bin): {PICKLE_HINT}"
            if is_hub_id(name) and not allow_pickle_weights
            else ""
        )
        raise ModelUnavailable(
            f"no AP-MAE checkpoint in {folder} (config.json + model.safetensors expected). Use `default`, "
            "a released checkpoint's hub id (LaughingLogits/AP-MAE-SC2-3B), or train one with "
            f"`attnlens train-apmae` and point ATTNLENS_APMAE__CHECKPOINT at its folder.{hint}"
        )
    if kind == "pickle" and not allow_pickle_weights:
        raise ModelUnavailable(f"the AP-MAE checkpoint in {folder} has only pickle weights: {PICKLE_HINT}")
    torch_device = device if isinstance(device, torch.device) else resolve_device(str(device))
    if decoder_mode is None and "decoder_mode" not in json.loads((folder / "config.json").read_text()):
        decoder_mode = "paper"  # a released AP-MAE-SC2 checkpoint: its decoder only ever saw the CLS vector
    overrides: dict[str, Any] = {"decoder_mode": decoder_mode} if decoder_mode else {}
    try:
        config = APMAEConfig.from_pretrained(folder, **overrides)
        loaded = APMAE.from_pretrained(
            folder,
            config=config,
            use_safetensors=True if kind == "safetensors" else None,
            output_loading_info=True,
        )
        # with output_loading_info, from_pretrained returns (model, info); its annotation says model only
        model, loading = cast("tuple[APMAE, dict[str, Any]]", loaded)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointMismatch(f"could not load the AP-MAE checkpoint in {folder}: {exc}") from exc
    # transformers initialises missing weights at random with only a log line; a checkpoint of another
    # layout would then embed noise, so any missing or mismatched weight is an error.
    mismatched = loading.get("mismatched_keys", ())
    missing = [*loading.get("missing_keys", ()), *(m[0] if isinstance(m, tuple) else m for m in mismatched)]
    if missing:
        raise CheckpointMismatch(
            f"the AP-MAE checkpoint in {folder} lacks {len(missing)} weights this model needs "
            f"(e.g. {sorted(missing)[:3]}): it is not an AP-MAE in the released parameter layout."
        )
    log.info("loaded AP-MAE from %s (%s decoder) on %s", folder, config.decoder_mode, torch_device)
    # transformers wraps PreTrainedModel.to with functools.wraps, which typeshed types as a plain callable
    # expecting the model itself as first argument.
    return model.to(torch_device).eval()  # type: ignore[arg-type]
