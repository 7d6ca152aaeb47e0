"""The two jobs behind `attnlens train-apmae` and `attnlens eval-apmae`, as plain functions."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from attnlens.apmae.cache import PatternSet, build_cache, default_spec, load_patterns, mean_image, read_spec
from attnlens.apmae.configuration import APMAEConfig
from attnlens.apmae.evaluate import evaluate, reconstruction_png
from attnlens.apmae.load import checkpoint_folder, load_apmae
from attnlens.apmae.train import STATE, TRAINING_INFO, TrainPlan, train
from attnlens.errors import CheckpointMismatch, InvalidInput

if TYPE_CHECKING:
    from attnlens.model import TargetModel

log = logging.getLogger(__name__)

CONFIG_PRESETS = {
    "smollm2-default": APMAEConfig.smollm2_default,
    "paper": APMAEConfig.released,
    "tiny": APMAEConfig.tiny,
}


def model_config(preset: str, *, decoder_mode: str, source_length: int | None) -> APMAEConfig:
    """A named AP-MAE size (`smollm2-default`, `paper`, `tiny`) or a config.json path, in `decoder_mode`."""
    overrides: dict[str, object] = {"decoder_mode": decoder_mode}
    if Path(preset).is_file():
        config = APMAEConfig.from_json_file(preset)
        config.decoder_mode = decoder_mode
    elif preset in CONFIG_PRESETS:
        config = CONFIG_PRESETS[preset](**overrides)
    else:
        raise InvalidInput(
            f"unknown AP-MAE size {preset!r}; use one of {sorted(CONFIG_PRESETS)} or a config.json path."
        )
    if source_length is not None and source_length != config.source_length:
        # The image size stays; the pooling factor follows the target model's window.
        config = APMAEConfig(**{**config.to_dict(), "source_length": source_length})
    config.validate_shapes()
    return config


def train_from_corpus(
    target: TargetModel | None,
    corpus: Path,
    *,
    config: APMAEConfig,
    cache_dir: Path,
    out_dir: Path,
    plan: TrainPlan,
    windows: int,
    heads_fraction: float,
    heldout_percent: int,
    source: str,
    max_file_bytes: int,
    correct_only: bool,
    resume: bool,
    device: torch.device,
    progress: bool = True,
) -> dict[str, object]:
    """Cache patterns (skipped for windows already cached), then train; returns the run summary.

    `target` may be None when the cache already holds every window asked for (no model is loaded then).
    """
    if (out_dir / STATE).exists() and not resume:
        raise InvalidInput(
            f"{out_dir} already holds a training run; pass --resume to continue it, or another --out."
        )
    if target is not None:
        spec = default_spec(
            target,
            corpus,
            source_length=config.source_length,
            image_size=config.max_length,
            source=source,
            heads_fraction=heads_fraction,
            heldout_percent=heldout_percent,
            seed=plan.seed,
            max_file_bytes=max_file_bytes,
        )
        build_cache(target, corpus, cache_dir, spec=spec, windows=windows, progress=progress)
    spec = read_spec(cache_dir)
    if spec.image_size != config.max_length or spec.source_length != config.source_length:
        raise CheckpointMismatch(
            f"the cache in {cache_dir} holds {spec.source_length}-token patterns pooled to "
            f"{spec.image_size}; the model wants {config.source_length} pooled to {config.max_length}. Use a "
            "matching --cache."
        )
    train_set = load_patterns(cache_dir, heldout=False, correct_only=correct_only)
    heldout = load_patterns(cache_dir, heldout=True, correct_only=correct_only)
    log.info("training on %d patterns, validating on %d held-out patterns", len(train_set), len(heldout))
    info = {
        "cache": str(cache_dir.resolve()),
        "cache_spec": asdict(spec),
        "correct_only": correct_only,
        "train_patterns": len(train_set),
        "train_inferences": len(set(train_set.window.tolist())),
        "heldout_patterns": len(heldout),
    }
    # A fixed subsample keeps the periodic held-out check cheap; eval-apmae scores the whole split.
    pick = torch.randperm(len(heldout), generator=torch.Generator().manual_seed(0))[:4096]
    summary = train(
        config, train_set, heldout.images[pick], out_dir, plan, device=device, info=info, progress=progress
    )
    return {**summary, **info}


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    cache_dir: Path | None,
    png: Path | None,
    device: str,
    decoder_mode: str | None = None,
    correct_only: bool | None = None,
    examples: int = 8,
) -> dict[str, object]:
    """Held-out masked-patch MSE of a checkpoint and both baselines (overall, per layer); writes the PNG."""
    model = load_apmae(checkpoint, device, decoder_mode=decoder_mode)
    info_path = checkpoint_folder(checkpoint) / TRAINING_INFO
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    if cache_dir is None:
        if "cache" not in info:
            raise InvalidInput(
                "this checkpoint does not say which pattern cache it was trained on; pass --cache."
            )
        cache_dir = Path(info["cache"])
    if correct_only is None:
        correct_only = bool(info.get("correct_only", True))
    spec = read_spec(cache_dir)
    if spec.image_size != model.config.max_length:
        raise CheckpointMismatch(
            f"the cache holds {spec.image_size}-pixel images; the checkpoint takes {model.config.max_length}."
        )
    heldout = load_patterns(cache_dir, heldout=True, correct_only=correct_only)
    report = evaluate(model, heldout, mean_image(cache_dir, correct_only=correct_only))
    report.update({"checkpoint": str(checkpoint), "cache": str(cache_dir), "correct_only": correct_only})
    if "step" in info:
        report["trained_steps"] = info["step"]
    if png is not None:
        report["png"] = str(reconstruction_png(model, _spread_examples(heldout, examples), png))
    return report


def _spread_examples(heldout: PatternSet, count: int) -> torch.Tensor:
    """`count` held-out images from layers spread evenly over the model's depth, one inference each."""
    layers = sorted(set(heldout.layer.tolist()))
    wanted = [layers[round(i * (len(layers) - 1) / max(1, count - 1))] for i in range(count)]
    generator = torch.Generator().manual_seed(7)
    chosen = []
    for layer in wanted:
        rows = torch.nonzero(heldout.layer == layer).flatten()
        chosen.append(int(rows[torch.randint(len(rows), (1,), generator=generator)]))
    return heldout.images[torch.tensor(chosen)].float()
