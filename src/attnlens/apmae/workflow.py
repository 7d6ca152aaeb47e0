"""The two jobs behind `attnlens train-apmae` and `attnlens eval-apmae`, as plain functions.

Splits (by file, attnlens.apmae.sources): training learns from `train` and picks its best step on
`validation`; `eval-apmae` reports `test`, which neither ever sees. A test set is read from the checkpoint's
own cache when that is at hand, else rebuilt from the corpus (attnlens.apmae.testset).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from attnlens.apmae.cache import (
    PatternSet,
    build_cache,
    cached_windows,
    default_spec,
    load_patterns,
    mean_image,
    read_spec,
    split_counts,
)
from attnlens.apmae.configuration import APMAEConfig
from attnlens.apmae.evaluate import evaluate, leave_one_window_out_means, reconstruction_png
from attnlens.apmae.load import RELEASED_CHECKPOINTS, checkpoint_folder, load_apmae
from attnlens.apmae.testset import build_eval_set, eval_set_spec, plan_for, read_record, require_corpus
from attnlens.apmae.train import STATE, TRAINING_INFO, TrainPlan, train
from attnlens.apmae.transfer import plan_on_model, same_model
from attnlens.errors import CheckpointMismatch, CorpusError, InvalidInput

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
    test_percent: int = 10,
    max_file_bytes: int,
    correct_only: bool,
    resume: bool,
    device: torch.device,
    progress: bool = True,
) -> dict[str, object]:
    """Cache patterns (skipped for windows already cached), then train; returns the run summary.

    `target` may be None when the cache already holds every window asked for (no model is loaded then).
    `heldout_percent` of the files are the validation split (the best step is picked on it),
    `test_percent` the test split: cached, counted, and never read here.
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
            test_percent=test_percent,
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
    train_set = load_patterns(cache_dir, split="train", correct_only=correct_only)
    validation = load_patterns(cache_dir, split="validation", correct_only=correct_only)
    counts = split_counts(cache_dir, correct_only=correct_only)
    log.info(
        "training on %d patterns, selecting the best step on %d validation patterns (%d test patterns kept "
        "apart)",
        len(train_set),
        len(validation),
        counts["test"]["patterns"],
    )
    info = {
        "cache": str(cache_dir.resolve()),
        "cache_spec": asdict(spec),
        "cache_windows": cached_windows(cache_dir),
        "correct_only": correct_only,
        "selected_on": "validation",
        "train_patterns": len(train_set),
        "train_inferences": len(set(train_set.window.tolist())),
        "validation_patterns": len(validation),
        "test_patterns": counts["test"]["patterns"],
        # every test window, correct or not: a test set is rebuilt as the stream's first this many
        "test_windows": split_counts(cache_dir, correct_only=False)["test"]["inferences"],
    }
    # A fixed subsample keeps the periodic validation check cheap; eval-apmae scores the whole test split.
    pick = torch.randperm(len(validation), generator=torch.Generator().manual_seed(0))[:4096]
    summary = train(
        config, train_set, validation.images[pick], out_dir, plan, device=device, info=info, progress=progress
    )
    return {**summary, **info}


SPLIT_NOTES = {
    "test": "test split: files the checkpoint never trained on and never selected its best step on",
    "validation": (
        "validation split: the files the checkpoint's best step was selected on, so the figure is optimistic"
    ),
}


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    cache_dir: Path | None,
    png: Path | None,
    device: str,
    decoder_mode: str | None = None,
    correct_only: bool | None = None,
    examples: int = 8,
    split: str = "test",
    data_dir: Path | None = None,
    corpus: Path | None = None,
    load_target: Callable[[str], TargetModel] | None = None,
    bootstrap: int = 1000,
    progress: bool = True,
    target_model: str | None = None,
    models_dir: Path | None = None,
    allow_pickle_weights: bool = False,
) -> dict[str, object]:
    """Masked-patch MSE of a checkpoint and both baselines (overall, per layer, with bootstrap intervals
    over windows) on one split; writes the PNG.

    `split` is `test` (default) or `validation` (the split the best step was picked on). The patterns come
    from `cache_dir`, else from the cache the checkpoint was trained on when it is here and holds that
    split, else (test only) from a test set rebuilt under `data_dir/apmae-test/` from the training corpus
    (or `corpus`), running the target model that `load_target(name)` loads. `target_model` scores the
    patterns of another model than the one the checkpoint trained on: its test set cut again in that model's
    tokens (attnlens.apmae.transfer). A hub-id checkpoint is cached under `models_dir`.
    """
    if split not in SPLIT_NOTES:
        raise InvalidInput(f"unknown split {split!r}; use test or validation.")
    model = load_apmae(
        checkpoint, device, decoder_mode=decoder_mode, models_dir=models_dir,
        allow_pickle_weights=allow_pickle_weights,
    )  # fmt: skip
    folder = checkpoint_folder(checkpoint, models_dir=models_dir, allow_pickle_weights=allow_pickle_weights)
    info_path = folder / TRAINING_INFO
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    trained_on = info.get("cache_spec", {}).get("model") or RELEASED_CHECKPOINTS.get(str(checkpoint))
    if target_model is not None and trained_on is not None and same_model(target_model, trained_on):
        target_model = None  # its own model: the test set it already has
    if target_model is not None and split != "test":
        raise InvalidInput("another model's patterns are scored on the test split only; drop --split.")
    if correct_only is None:
        correct_only = bool(info.get("correct_only", True))
    built: dict[str, object] | None = None
    if cache_dir is None:
        cache_dir, built = _patterns_for(
            info, split, data_dir=data_dir, corpus=corpus, load_target=load_target, progress=progress,
            target_model=target_model,
        )  # fmt: skip
    spec = read_spec(cache_dir)
    if target_model is not None and not same_model(spec.model, target_model):
        raise InvalidInput(f"the cache in {cache_dir} holds patterns of {spec.model}, not of {target_model}.")
    if spec.image_size != model.config.max_length:
        raise CheckpointMismatch(
            f"the cache holds {spec.image_size}-pixel images; the checkpoint takes {model.config.max_length}."
        )
    if split == "test" and spec.selection == "all" and spec.test_percent == 0:
        raise InvalidInput(
            f"the cache in {cache_dir} has no test split (built before test splits existed, or with "
            "--test-percent 0): its held-out files are the validation split a training run picks its best "
            "step on. Pass --split validation to score them (an optimistic figure), or leave out --cache to "
            "score the checkpoint's test set."
        )
    patterns = load_patterns(cache_dir, split=split, correct_only=correct_only)
    if split_counts(cache_dir, correct_only=correct_only)["train"]["patterns"] > 0:
        means, index = mean_image(cache_dir, correct_only=correct_only), None
        mean_from = "the training split of the cache"
    else:
        means, index = leave_one_window_out_means(patterns)
        mean_from = "the other windows of the evaluated set (leave one window out); no training split here"
    report = evaluate(model, patterns, means, mean_index=index, bootstrap=bootstrap)
    report.update(
        {
            "checkpoint": str(checkpoint),
            "cache": str(cache_dir),
            "split": split,
            "split_note": SPLIT_NOTES[split],
            "selected_on": info.get("selected_on", "validation (its held-out split)"),
            "mean_image_from": mean_from,
            "correct_only": correct_only,
            "trained_on": trained_on,
            "evaluated_model": spec.model,
            "window_tokens": spec.source_length,
            "image_size": spec.image_size,
            "patterns_note": (
                f"{spec.model}'s attention over windows of {spec.source_length} of its tokens, average-"
                f"pooled {spec.source_length // spec.image_size}x to the checkpoint's "
                f"{spec.image_size}x{spec.image_size} images"
            ),
        }
    )
    report["test_set_how"] = f"the {split} split of the pattern cache {cache_dir}"
    if built is not None:
        report["test_set"] = built
        report["test_set_how"] = str(built.get("how", ""))
    if "step" in info:
        report["trained_steps"] = info["step"]
    if png is not None:
        report["png"] = str(reconstruction_png(model, _spread_examples(patterns, examples), png))
    return report


def _patterns_for(
    info: dict[str, object],
    split: str,
    *,
    data_dir: Path | None,
    corpus: Path | None,
    load_target: Callable[[str], TargetModel] | None,
    progress: bool,
    target_model: str | None = None,
) -> tuple[Path, dict[str, object] | None]:
    """The cache to score `split` from when no --cache is given, and the record of a rebuilt test set
    (of `target_model`'s patterns when given: never the training cache, which holds another model's)."""
    recorded = Path(str(info["cache"])) if "cache" in info and target_model is None else None
    if recorded is not None and (recorded / "meta.json").is_file():
        if split_counts(recorded, correct_only=False)[split]["patterns"] > 0:
            return recorded, None
    if split == "validation":
        raise InvalidInput(
            "the validation split lives in the cache the checkpoint was trained on"
            + (f" ({recorded}), which is not on this machine" if recorded else ", which it does not record")
            + "; pass --cache, or score the test split (rebuilt from the corpus when needed)."
        )
    plan = plan_for(info)
    if plan is None:
        raise InvalidInput(
            "this checkpoint has no test split to rebuild: it was trained without one (or its "
            "training.json does not say how) and no test manifest matches it. Pass --cache with a pattern "
            "cache of files it never trained or selected on."
        )
    if target_model is not None:
        plan = plan_on_model(plan, target_model)
    if data_dir is None:
        raise InvalidInput("rebuilding the test set needs a data folder; pass data_dir.")
    source = corpus or Path(plan.spec.corpus)
    require_corpus(source)
    folder = plan.folder(data_dir / "apmae-test", source.resolve())
    record = read_record(folder, eval_set_spec(plan, source))
    if record is None:
        if load_target is None:
            raise InvalidInput("rebuilding the test set needs the target model; pass load_target.")
        log.info("building the test set in %s (%s)", folder, plan.how)
        target = load_target(plan.spec.model)
        record = build_eval_set(target, plan, folder, corpus=source, progress=progress)
    if not record["windows"]:
        raise CorpusError(f"no test window could be cut from {source}: {record['problems']}")
    return folder, {"folder": str(folder), "corpus": str(source), **record}


def _spread_examples(heldout: PatternSet, count: int) -> torch.Tensor:
    """`count` evaluated images from layers spread evenly over the model's depth, one inference each."""
    layers = sorted(set(heldout.layer.tolist()))
    wanted = [layers[round(i * (len(layers) - 1) / max(1, count - 1))] for i in range(count)]
    generator = torch.Generator().manual_seed(7)
    chosen = []
    for layer in wanted:
        rows = torch.nonzero(heldout.layer == layer).flatten()
        chosen.append(int(rows[torch.randint(len(rows), (1,), generator=generator)]))
    return heldout.images[torch.tensor(chosen)].float()
