"""Loading an AP-MAE checkpoint: the shipped default, any folder, or `Settings.apmae`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from attnlens.errors import CheckpointMismatch, ModelUnavailable

if TYPE_CHECKING:
    from attnlens.apmae.model import APMAE
    from attnlens.config import Settings

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "default"


def checkpoint_folder(name_or_path: str | Path) -> Path:
    """`default` -> the checkpoint shipped for SmolLM2; anything else is a folder path."""
    if str(name_or_path) == "default":
        return DEFAULT_CHECKPOINT
    return Path(name_or_path).expanduser()


def load_apmae(
    settings_or_path: Settings | str | Path,
    device: str | torch.device = "auto",
    *,
    decoder_mode: str | None = None,
) -> APMAE:
    """An AP-MAE in eval mode on `device` (`auto`: CUDA when present).

    `settings_or_path` is a `Settings` (uses `settings.apmae.checkpoint` and, unless `device` is given,
    `settings.apmae.device`), `"default"`, or a folder with config.json + model.safetensors. A released
    checkpoint (its config.json has no `decoder_mode`) gets the `paper` decoder it was trained with, unless
    `decoder_mode` says otherwise.
    """
    from attnlens.apmae.configuration import APMAEConfig
    from attnlens.apmae.model import APMAE
    from attnlens.config import Settings
    from attnlens.model.loading import resolve_device

    if isinstance(settings_or_path, Settings):
        folder = checkpoint_folder(settings_or_path.apmae.checkpoint)
        if str(device) == "auto":
            device = settings_or_path.apmae.device
    else:
        folder = checkpoint_folder(settings_or_path)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise ModelUnavailable(
            f"no AP-MAE checkpoint in {folder} (config.json + model.safetensors expected). Use `default`, "
            "or train one with `attnlens train-apmae` and point ATTNLENS_APMAE__CHECKPOINT at its folder."
        )
    torch_device = device if isinstance(device, torch.device) else resolve_device(str(device))
    if decoder_mode is None and "decoder_mode" not in json.loads((folder / "config.json").read_text()):
        decoder_mode = "paper"  # a released AP-MAE-SC2 checkpoint: its decoder only ever saw the CLS vector
    overrides: dict[str, Any] = {"decoder_mode": decoder_mode} if decoder_mode else {}
    try:
        config = APMAEConfig.from_pretrained(folder, **overrides)
        model = APMAE.from_pretrained(folder, config=config)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointMismatch(f"could not load the AP-MAE checkpoint in {folder}: {exc}") from exc
    log.info("loaded AP-MAE from %s (%s decoder) on %s", folder, config.decoder_mode, torch_device)
    # transformers wraps PreTrainedModel.to with functools.wraps, which typeshed types as a plain callable
    # expecting the model itself as first argument.
    return model.to(torch_device).eval()  # type: ignore[arg-type]
