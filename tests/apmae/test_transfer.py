"""AP-MAE across models: a tiny checkpoint trained on the tiny StarCoder2 scored on its own model's test set
and on another tiny model's (`eval-apmae --model`), the recorded matrix, and its Markdown table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnlens.apmae.cache import load_patterns, read_spec
from attnlens.apmae.transfer import (
    TRANSFER_FILE,
    TransferResult,
    plan_on_model,
    read_transfer_matrix,
    record_evaluation,
    transfer_markdown,
)
from attnlens.contracts.findings import Estimate, LayerReconstruction
from attnlens.errors import InvalidInput

REPO = Path(__file__).resolve().parents[2]
JAVA_FIXTURES = REPO / "tests" / "data" / "java"
TRAINED_ON = "tiny-starcoder2"
# Another architecture with the same tiny tokenizer (so the same windows, other patterns); added beside
# tiny-starcoder2 in attnlens.contracts.models.
OTHER = "tiny-qwen2"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_checkpoint_scored_on_its_own_and_another_models_patterns(tmp_path):
    from attnlens.cli import app

    runner = CliRunner()
    data_dir = tmp_path / "data"
    common = ["--data-dir", str(data_dir)]
    run = tmp_path / "run"
    done = runner.invoke(app, [
        *common, "train-apmae", "--model", TRAINED_ON, "--corpus", str(JAVA_FIXTURES),
        "--size", "tiny", "--source", "windows", "--windows", "6",
        "--validation-percent", "20", "--test-percent", "40", "--include-incorrect",
        "--cache", str(tmp_path / "cache"), "--out", str(run), "--steps", "2", "--batch-size", "4",
        "--warmup", "1", "--eval-every", "1", "--checkpoint-every", "1", "--threads", "1",
    ])  # fmt: skip
    assert done.exit_code == 0, done.output
    checkpoint = str(run / "best")
    evaluate = [*common, "eval-apmae", "--checkpoint", checkpoint, "--bootstrap", "200", "--threads", "1"]

    own = runner.invoke(app, [*evaluate, "--png", str(tmp_path / "own.png")])
    assert own.exit_code == 0, own.output
    own_report = json.loads(own.stdout)
    assert own_report["trained_on"] == own_report["evaluated_model"] == TRAINED_ON
    assert Path(own_report["transfer_matrix"]) == data_dir / TRANSFER_FILE

    other_args = [*evaluate, "--model", OTHER, "--png", str(tmp_path / "other.png")]
    other = runner.invoke(app, other_args)
    assert other.exit_code == 0, other.output
    report = json.loads(other.stdout)
    assert report["trained_on"] == TRAINED_ON and report["evaluated_model"] == OTHER
    assert report["window_tokens"] == report["image_size"] == 32  # the checkpoint's source_length, no pooling
    assert "pooled 1x" in report["patterns_note"]
    built = Path(report["test_set"]["folder"])
    assert built.parent == data_dir / "apmae-test" and f"-on-{OTHER}-" in built.name
    assert read_spec(built).model == OTHER and report["test_set"]["matches_plan"]
    # the same test files as the checkpoint's own test split, cut in the other model's tokens
    own_files = set(load_patterns(tmp_path / "cache", split="test", correct_only=False).files)
    assert set(load_patterns(built, split="test", correct_only=False).files) == own_files
    assert report["mean_image_from"].startswith("the other windows")

    matrix = read_transfer_matrix(data_dir)
    label = str((run / "best").resolve())
    assert matrix.checkpoints == (label,) and matrix.models == (TRAINED_ON, OTHER)  # own model first
    assert matrix.trained_on == (TRAINED_ON,)
    diagonal, across = matrix.cell(label, TRAINED_ON), matrix.cell(label, OTHER)
    assert diagonal is not None and across is not None
    assert diagonal.own_model and not across.own_model
    assert (across.trained_on, across.model, across.windows) == (TRAINED_ON, OTHER, 2)
    for cell in (diagonal, across):
        for e in (cell.model_mse, cell.mean_image, cell.mean_visible, cell.ratio):
            assert math.isfinite(e.estimate) and e.low <= e.estimate <= e.high
        best = min(cell.mean_image.estimate, cell.mean_visible.estimate)
        assert cell.ratio.estimate == pytest.approx(cell.model_mse.estimate / best)
        assert [layer.layer for layer in cell.per_layer] == [0, 1, 2, 3]

    made = (built / "eval_set.json").stat().st_mtime_ns
    rerun = runner.invoke(app, other_args)  # replaces its cell, reusing the built test set
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["test_set"]["folder"] == str(built)
    assert (built / "eval_set.json").stat().st_mtime_ns == made
    stored = json.loads((data_dir / TRANSFER_FILE).read_text())["results"]
    assert sorted((r["checkpoint"], r["model"]) for r in stored) == [(label, OTHER), (label, TRAINED_ON)]

    shown = runner.invoke(app, [*common, "eval-apmae", "--matrix"])
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.stdout.splitlines() if line.startswith("|")]
    assert rows[0] == f"| checkpoint (trained on) | `{TRAINED_ON}` | `{OTHER}` |"
    assert len(rows) == 3 and rows[2].startswith(f"| `{label}` ({TRAINED_ON}) |")
    cells = [c.strip() for c in rows[2].strip("|").split("|")][1:]
    assert cells[0].endswith("own model**") and "own model" not in cells[1]
    assert "minimal degradation" in shown.stdout and "not retrievable" in shown.stdout


def test_a_manifest_test_set_for_another_model_cuts_the_same_files(tiny_model, tmp_path):
    from itertools import islice

    from attnlens.apmae.cache import CacheSpec, default_spec
    from attnlens.apmae.sources import iter_windows, window_digest
    from attnlens.apmae.testset import EvalSetPlan, WindowManifest, build_eval_set
    from attnlens.model import TargetModel

    stream = iter_windows(
        tiny_model, JAVA_FIXTURES, context_tokens=32, seed=0, max_file_bytes=100_000, source="windows"
    )
    unseen = list(islice(stream, 3))[1:]
    spec = default_spec(
        tiny_model, JAVA_FIXTURES, source_length=32, image_size=32, source="windows", heads_fraction=0.5,
        heldout_percent=50, seed=0, max_file_bytes=100_000,
    )  # fmt: skip
    manifest = WindowManifest(
        name="tiny-unseen",
        description="windows 1-2",
        trained_on={"cache_spec": dict(vars(spec)), "train_patterns": 8, "heldout_patterns": 8},
        windows=tuple((w.file_path, w.end, len(w.target_ids)) for w in unseen),
        digest=window_digest(unseen),
    )
    plan = EvalSetPlan(
        name="tiny-unseen",
        spec=CacheSpec(**{**vars(spec), "selection": "manifest:tiny-unseen"}),
        windows=2,
        manifest=manifest,
        how="windows 1-2",
    )
    assert plan_on_model(plan, TRAINED_ON) is plan
    moved = plan_on_model(plan, OTHER)
    assert moved.spec.model == OTHER and moved.name == f"tiny-unseen-on-{OTHER}"
    assert moved.folder(tmp_path, JAVA_FIXTURES) != plan.folder(tmp_path, JAVA_FIXTURES)
    other = TargetModel.load(OTHER, models_dir=tmp_path / "models", device="cpu")
    record = build_eval_set(other, moved, tmp_path / "set", corpus=JAVA_FIXTURES, progress=False)
    assert record["windows"] == 2 and record["problems"] == [] and record["matches_plan"]
    got = load_patterns(tmp_path / "set", split="test", correct_only=False)
    assert set(got.files) == {w.file_path for w in unseen}
    assert len(got) == 2 * 4 * 2  # 2 windows x 4 layers x int(0.5 * 4) heads


def fake_result(checkpoint: str, model: str, trained_on: str | None, mse: float) -> TransferResult:
    def e(value: float) -> Estimate:
        return Estimate(value, value * 0.9, value * 1.1)

    return TransferResult(
        checkpoint=checkpoint, trained_on=trained_on, model=model, windows=4, patterns=32, files=4,
        model_mse=e(mse), mean_image=e(0.2), mean_visible=e(0.1), best_baseline="mean_visible",
        ratio=e(mse / 0.1), per_layer=(LayerReconstruction(0, mse, 0.2, 0.1),), window_tokens=32,
        image_size=32, decoder_mode="mae", test_set="test", mean_image_from="the training split",
    )  # fmt: skip


def test_the_matrix_file_replaces_cells_and_renders_missing_ones(tmp_path):
    assert transfer_markdown(read_transfer_matrix(tmp_path)).count("Nothing measured yet") == 1
    record_evaluation(tmp_path, fake_result("default", "smollm2", "smollm2", 0.05))
    record_evaluation(tmp_path, fake_result("a|b", "tiny-qwen2", None, 0.08))
    record_evaluation(tmp_path, fake_result("default", "smollm2", "smollm2", 0.04))  # replaces
    matrix = read_transfer_matrix(tmp_path)
    assert matrix.checkpoints == ("a|b", "default") and matrix.models == ("smollm2", "tiny-qwen2")
    assert matrix.cell("default", "smollm2").model_mse.estimate == 0.04  # type: ignore[union-attr]
    assert matrix.cell("default", "tiny-qwen2") is None
    assert matrix.cell("a|b", "tiny-qwen2") == fake_result("a|b", "tiny-qwen2", None, 0.08)  # round trip
    table = transfer_markdown(matrix)
    assert "| `a\\|b` (not recorded) | not measured | 0.08 [0.072, 0.088]; ×0.80 [0.72, 0.88] of" in table
    assert "**0.04 [0.036, 0.044]; ×0.40 [0.36, 0.44] of mean_visible; own model**" in table
    with pytest.raises(InvalidInput, match="bootstrap"):
        from attnlens.apmae.transfer import result_from_report

        result_from_report({"split": "test"})


def test_the_findings_report_shows_the_recorded_matrix(tmp_path):
    from attnlens.atlas.findings import generalisation_finding

    empty = generalisation_finding(tmp_path, ["smollm2"])
    assert empty.reason is not None and not empty.rows
    assert "eval-apmae --checkpoint C --model M" in empty.reason
    record_evaluation(tmp_path, fake_result("default", "smollm2", "smollm2", 0.04))
    record_evaluation(tmp_path, fake_result("default", "gemma3-270m", "smollm2", 0.06))
    found = generalisation_finding(tmp_path, ["gemma3-270m", "smollm2"])
    assert found.reason is None
    assert found.header == ["checkpoint (trained on)", "smollm2", "gemma3-270m"]  # own model first
    (row,) = found.rows
    assert row[0] == "default (smollm2)" and row[1].endswith("own model**")
    assert row[2] == "0.06 [0.054, 0.066]; ×0.60 [0.54, 0.66] of mean_visible"
