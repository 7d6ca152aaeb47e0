"""AP-MAE across models: a checkpoint scored on the held-out patterns of a target model it may never have
trained on, and the matrix of such scores (`attnlens eval-apmae --model M`, `attnlens eval-apmae --matrix`).

The test set for another model is the checkpoint's own test set cut again in that model's tokens
(`plan_on_model`): the same corpus, seed and split, so the same files (bar any too short in the new tokens),
windows of the checkpoint's `source_length` tokens of that model, whose patterns AP-MAE average-pools to its
`max_length` image as always. It lives in its own folder under `<data>/apmae-test/`, keyed by the model.

Each test-split evaluation is recorded as a `TransferResult` in `<data>/apmae-eval/transfer.json`, one per
(checkpoint, model): a rerun replaces its cell.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from attnlens.apmae.load import is_hub_id
from attnlens.apmae.testset import EvalSetPlan
from attnlens.contracts.findings import PAPER_CLAIMS, TRANSFER_HOW_TO_READ, Estimate, LayerReconstruction
from attnlens.contracts.models import PRESETS
from attnlens.errors import InvalidInput, StoreError

TRANSFER_FILE = Path("apmae-eval") / "transfer.json"
FORMAT = 1
BASELINES = ("mean_image", "mean_visible")
# paper-method.md section 4.1 (shared reference notes): the paper's numbers are not retrievable.
PAPER_SOURCE = (
    "The figures behind that claim are not retrievable (its cross-size results over StarCoder2 3B, 7B and "
    '15B are not public; only the words "high accuracy" and cross-size "minimal degradation" are), so these '
    "cells cannot be set beside the paper's numbers."
)


def same_model(a: str, b: str) -> bool:
    """Whether two model names (a preset and its hub id count as one) name the same model."""

    def names(model: str) -> set[str]:
        preset = PRESETS.get(model)
        same = {p.name for p in PRESETS.values() if p.hub_id == model}
        return {model, *same, *([preset.hub_id] if preset and preset.hub_id else [])}

    return bool(names(a) & names(b))


def checkpoint_label(checkpoint: str | Path) -> str:
    """How a checkpoint is keyed in the matrix: `default` and hub ids as named, folders as absolute paths."""
    text = str(checkpoint)
    if text == "default" or is_hub_id(text):
        return text
    return str(Path(text).expanduser().resolve())


def plan_on_model(plan: EvalSetPlan, model: str) -> EvalSetPlan:
    """The checkpoint's test set with `model`'s patterns: the same corpus, seed, split and window length, cut
    in `model`'s tokens; its spec names `model`, so its folder never collides with the trained model's."""
    if model == plan.spec.model:
        return plan
    slug = Path(model).name.replace("/", "-")
    return replace(
        plan,
        name=f"{plan.name}-on-{slug}",
        spec=replace(plan.spec, model=model),
        how=(
            f"{plan.how}; cut again in {model}'s tokens ({plan.spec.source_length}-token windows of the same "
            "files, bar any too short in those tokens)"
        ),
    )


@dataclass(frozen=True)
class TransferResult:
    """One checkpoint scored on one model's held-out patterns (the test split)."""

    checkpoint: str  # `checkpoint_label`
    trained_on: str | None  # the model whose patterns it learnt from; None: not recorded
    model: str  # the model whose patterns were scored
    windows: int  # inferences (the bootstrap resamples whole windows)
    patterns: int
    files: int
    model_mse: Estimate  # masked-patch MSE of the checkpoint
    mean_image: Estimate  # of predicting a per-pixel mean image
    mean_visible: Estimate  # of predicting each image's mean visible value
    best_baseline: str  # the baseline with the lower MSE
    ratio: Estimate  # model MSE / best baseline MSE
    per_layer: tuple[LayerReconstruction, ...]
    window_tokens: int  # tokens of `model` per window: the checkpoint's source_length
    image_size: int  # the checkpoint's max_length, what each pattern is pooled to
    decoder_mode: str
    test_set: str  # how the windows were chosen
    mean_image_from: str  # the training split of the cache, or the other windows of this set

    @property
    def own_model(self) -> bool:
        return self.trained_on is not None and same_model(self.trained_on, self.model)


@dataclass(frozen=True)
class TransferMatrix:
    """Rows: checkpoints; columns: models; cells: the recorded result or None (not measured)."""

    checkpoints: tuple[str, ...]
    models: tuple[str, ...]
    cells: tuple[tuple[TransferResult | None, ...], ...]
    trained_on: tuple[str | None, ...]  # per checkpoint

    def cell(self, checkpoint: str, model: str) -> TransferResult | None:
        return self.cells[self.checkpoints.index(checkpoint)][self.models.index(model)]


def result_from_report(report: dict[str, Any]) -> TransferResult:
    """The typed result of an `evaluate_checkpoint` report on the test split with bootstrap intervals."""
    if report.get("split") != "test" or "intervals" not in report:
        raise InvalidInput(
            "only a test-split evaluation with bootstrap intervals goes into the transfer matrix; run "
            "eval-apmae with --split test and --bootstrap above 0."
        )
    mse: dict[str, float] = report["masked_patch_mse"]
    overall: dict[str, list[float]] = report["intervals"]["overall"]

    def estimate(name: str, point: float) -> Estimate:
        low, high = overall[name]
        return Estimate(float(point), float(low), float(high))

    best = min(BASELINES, key=lambda name: mse[name])
    per_layer = sorted(report["per_layer"].items(), key=lambda item: int(item[0]))
    return TransferResult(
        checkpoint=checkpoint_label(report["checkpoint"]),
        trained_on=report.get("trained_on"),
        model=str(report["evaluated_model"]),
        windows=int(report["inferences"]),
        patterns=int(report["patterns"]),
        files=int(report["files"]),
        model_mse=estimate("model", mse["model"]),
        mean_image=estimate("mean_image", mse["mean_image"]),
        mean_visible=estimate("mean_visible", mse["mean_visible"]),
        best_baseline=best,
        ratio=estimate(f"ratio_to_{best}", mse["model"] / mse[best]),
        per_layer=tuple(
            LayerReconstruction(int(layer), v["model"], v["mean_image"], v["mean_visible"])
            for layer, v in per_layer
        ),
        window_tokens=int(report["window_tokens"]),
        image_size=int(report["image_size"]),
        decoder_mode=str(report["decoder_mode"]),
        test_set=str(report.get("test_set_how", "")),
        mean_image_from=str(report.get("mean_image_from", "")),
    )


def _from_json(row: dict[str, Any]) -> TransferResult:
    estimates = {k: Estimate(**row[k]) for k in ("model_mse", "mean_image", "mean_visible", "ratio")}
    layers = tuple(LayerReconstruction(**layer) for layer in row["per_layer"])
    return TransferResult(**{**row, **estimates, "per_layer": layers})


def read_results(data_dir: Path) -> list[TransferResult]:
    path = data_dir / TRANSFER_FILE
    if not path.is_file():
        return []
    try:
        stored = json.loads(path.read_text())
        if stored.get("format") != FORMAT:
            raise ValueError(f"format {stored.get('format')!r}, expected {FORMAT}")
        return [_from_json(row) for row in stored["results"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"{path} is not a transfer matrix this version reads ({exc}); move it aside and rerun "
            "`attnlens eval-apmae --model ...` for the cells you need."
        ) from exc


def record_evaluation(data_dir: Path, result: TransferResult) -> Path:
    """Add `result` to `<data_dir>/apmae-eval/transfer.json`, replacing the cell of the same (checkpoint,
    model); the file is replaced whole, so a reader never sees half of it. Returns its path."""
    kept = [r for r in read_results(data_dir) if (r.checkpoint, r.model) != (result.checkpoint, result.model)]
    rows = sorted([*kept, result], key=lambda r: (r.checkpoint, r.model))
    path = data_dir / TRANSFER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "results": [asdict(r) for r in rows]}, indent=2))
    os.replace(tmp, path)
    return path


def read_transfer_matrix(data_dir: Path) -> TransferMatrix:
    """The recorded results as a matrix: checkpoints sorted; models the checkpoints were trained on first
    (so own-model cells run down the diagonal where they can), then the others sorted."""
    results = read_results(data_dir)
    checkpoints = tuple(sorted({r.checkpoint for r in results}))
    trained = tuple(next((r.trained_on for r in results if r.checkpoint == c), None) for c in checkpoints)
    evaluated = {r.model for r in results}
    first = [m for t in trained if t for m in sorted(evaluated) if same_model(m, t)]
    models = tuple(dict.fromkeys([*first, *sorted(evaluated)]))
    cells = tuple(
        tuple(next((r for r in results if r.checkpoint == c and r.model == m), None) for m in models)
        for c in checkpoints
    )
    return TransferMatrix(checkpoints, models, cells, trained)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _cell(result: TransferResult | None) -> str:
    if result is None:
        return "not measured"
    m, r = result.model_mse, result.ratio
    text = (
        f"{m.estimate:.4g} [{m.low:.4g}, {m.high:.4g}]; ×{r.estimate:.2f} [{r.low:.2f}, {r.high:.2f}] of "
        f"{result.best_baseline}"
    )
    return f"**{text}; own model**" if result.own_model else text


def transfer_table(matrix: TransferMatrix) -> tuple[list[str], list[list[str]]]:
    """The matrix as table text: the header (checkpoint, then one column per model) and one row per
    checkpoint (the findings report and `transfer_markdown` print it)."""
    header = ["checkpoint (trained on)", *matrix.models]
    rows = [
        [f"{checkpoint} ({trained or 'not recorded'})", *(_cell(c) for c in row)]
        for checkpoint, trained, row in zip(matrix.checkpoints, matrix.trained_on, matrix.cells, strict=True)
    ]
    return header, rows


def transfer_markdown(matrix: TransferMatrix) -> str:
    """The matrix as a Markdown table, the paper's claim, and how to read it."""
    lines = ["## AP-MAE across models", ""]
    if not matrix.checkpoints:
        lines.append(
            "Nothing measured yet: `attnlens eval-apmae --checkpoint C --model M` scores a checkpoint on a "
            "model's held-out patterns and records the cell."
        )
    else:
        lines += [
            "Masked-patch MSE [95% interval] on held-out patterns (files never trained or selected on), "
            "and × its ratio [95% interval] to the better baseline.",
            "",
            "| checkpoint (trained on) | " + " | ".join(f"`{_escape(m)}`" for m in matrix.models) + " |",
            "|---|" + "---|" * len(matrix.models),
        ]
        for checkpoint, trained, row in zip(matrix.checkpoints, matrix.trained_on, matrix.cells, strict=True):
            head = f"`{_escape(checkpoint)}` ({_escape(trained or 'not recorded')})"
            lines.append(f"| {head} | " + " | ".join(_escape(_cell(c)) for c in row) + " |")
    lines += ["", f"Paper: {PAPER_CLAIMS['generalisation']} {PAPER_SOURCE}", "", TRANSFER_HOW_TO_READ, ""]
    return "\n".join(lines)
