"""AP-MAE data, training and evaluation on the tiny StarCoder2: cache, splits, resume, baselines, test sets,
CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from attnlens.apmae import APMAE, APMAEConfig
from attnlens.apmae.cache import build_cache, default_spec, load_patterns, mean_image, split_counts
from attnlens.apmae.evaluate import evaluate, masked_errors
from attnlens.apmae.sources import split_of
from attnlens.apmae.train import TrainPlan, lr_at, train
from attnlens.errors import CheckpointMismatch, InvalidInput

REPO = Path(__file__).resolve().parents[2]
JAVA_FIXTURES = REPO / "tests" / "data" / "java"


pytestmark = pytest.mark.usefixtures("one_thread")


def java_file(index: int) -> str:
    methods = "\n".join(
        f"    public int method{index}_{m}(int value) {{\n"
        f"        int total = value * {m + index};\n"
        f"        for (int i = 0; i < {m + 3}; i++) {{ total += i % {m + 2}; }}\n"
        f'        System.out.println("method {m} of {index}: " + total);\n'
        f"        return total;\n    }}\n"
        for m in range(3)
    )
    return f"package demo.p{index};\n\npublic class Sample{index} {{\n{methods}}}\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    for i in range(16):
        path = folder / f"pkg{i % 4}" / f"Sample{i}.java"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(java_file(i))
    return folder


def spec_for(model, corpus: Path, **overrides):
    args = {
        "source_length": 32,
        "image_size": 32,
        "source": "windows",
        "heads_fraction": 0.5,
        "heldout_percent": 50,
        "seed": 0,
        "max_file_bytes": 100_000,
    }
    return default_spec(model, corpus, **{**args, **overrides})


def test_cache_builds_in_whole_shards_and_resumes(tiny_model, corpus, tmp_path):
    cache = tmp_path / "cache"
    spec = spec_for(tiny_model, corpus)
    assert build_cache(tiny_model, corpus, cache, spec=spec, windows=6, shard_windows=2, progress=False) == 6
    assert len(list(cache.glob("shard-*.npz"))) == 3
    assert (
        build_cache(tiny_model, corpus, cache, spec=spec, windows=10, shard_windows=2, progress=False) == 10
    )
    assert len(list(cache.glob("shard-*.npz"))) == 5
    train_part = load_patterns(cache, split="train", correct_only=False)
    held = load_patterns(cache, split="validation", correct_only=False)
    windows = set(train_part.window.tolist()) | set(held.window.tolist())
    assert windows == set(range(10))  # resumed, no window cached twice or skipped
    assert len(train_part) + len(held) == 10 * 4 * 2  # 4 layers x int(0.5 * 4) heads
    images = train_part.images.float()
    assert images.shape[1:] == (32, 32) and train_part.images.dtype == torch.float16
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    assert torch.all(images.triu(1) == 0)
    # the validation split is decided by file, so no file is on both sides
    assert set(train_part.files).isdisjoint(held.files)
    assert all(split_of(f, 50) == "validation" for f in held.files)
    with pytest.raises(CheckpointMismatch, match="another --cache"):
        build_cache(
            tiny_model, corpus, cache, spec=spec_for(tiny_model, corpus, seed=1), windows=10, progress=False
        )


def test_a_missing_cache_says_how_to_build_one(tmp_path):
    from attnlens.apmae.cache import read_spec
    from attnlens.errors import CorpusError

    with pytest.raises(CorpusError, match="train-apmae"):
        read_spec(tmp_path / "nowhere")


def test_choose_heads_takes_a_share_of_every_layer():
    import random

    from attnlens.apmae.cache import choose_heads

    quarter = choose_heads(30, 9, 0.25, random.Random(0))
    assert len(quarter) == 60 and {layer for layer, _ in quarter} == set(range(30))
    assert len(choose_heads(30, 9, 1.0, random.Random(0))) == 270
    assert len(choose_heads(2, 3, 0.01, random.Random(0))) == 2  # at least one per layer


def test_learning_rate_warms_up_then_decays_to_the_floor():
    plan = TrainPlan(steps=100, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, plan) == pytest.approx(1e-4)
    assert lr_at(9, plan) == pytest.approx(1e-3)
    assert lr_at(55, plan) == pytest.approx(1e-4 + 0.9e-3 * 0.5)
    assert lr_at(100, plan) == pytest.approx(1e-4)


def test_resumed_training_matches_an_uninterrupted_run(tiny_model, corpus, tmp_path):
    cache = tmp_path / "cache"
    build_cache(tiny_model, corpus, cache, spec=spec_for(tiny_model, corpus), windows=8, progress=False)
    data = load_patterns(cache, split="train", correct_only=False)
    held = load_patterns(cache, split="validation", correct_only=False).images
    config = APMAEConfig.tiny()
    plan = TrainPlan(steps=12, batch_size=8, warmup_steps=2, checkpoint_every=4, eval_every=6)
    cpu = torch.device("cpu")
    whole = train(config, data, held, tmp_path / "whole", plan, device=cpu, progress=False)
    first = train(config, data, held, tmp_path / "split", plan, device=cpu, stop_after=5, progress=False)
    assert first["step"] == 5
    # a fresh config, as a `--resume` from the command line builds:
    # saving added bookkeeping keys to the old one
    second = train(APMAEConfig.tiny(), data, held, tmp_path / "split", plan, device=cpu, progress=False)
    assert second["step"] == whole["step"] == 12
    a = APMAE.from_pretrained(tmp_path / "whole" / "last").state_dict()
    b = APMAE.from_pretrained(tmp_path / "split" / "last").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "whole" / "best" / "training.json").is_file()
    with pytest.raises(CheckpointMismatch, match="different plan"):
        train(
            config,
            data,
            held,
            tmp_path / "whole",
            TrainPlan(steps=20, batch_size=8),
            device=cpu,
            progress=False,
        )


def test_baselines_are_exact_on_constant_images():
    torch.manual_seed(0)
    model = APMAE(APMAEConfig.tiny())
    images = torch.full((5, 32, 32), 0.25)
    errors = masked_errors(model, images, images[0])
    assert torch.all(errors["mean_image"] == 0) and torch.all(errors["mean_visible"].abs() < 1e-12)
    assert torch.all(errors["model"] > 0)


def test_evaluate_reports_overall_and_per_layer(tiny_model, corpus, tmp_path):
    cache = tmp_path / "cache"
    build_cache(tiny_model, corpus, cache, spec=spec_for(tiny_model, corpus), windows=8, progress=False)
    held = load_patterns(cache, split="validation", correct_only=False)
    torch.manual_seed(0)
    report = evaluate(APMAE(APMAEConfig.tiny()), held, mean_image(cache, correct_only=False), bootstrap=200)
    assert report["patterns"] == len(held)
    assert set(report["masked_patch_mse"]) == {"model", "mean_image", "mean_visible"}
    assert set(report["per_layer"]) == {str(layer) for layer in set(held.layer.tolist())}
    assert report["ratio_to_mean_image"] == pytest.approx(
        report["masked_patch_mse"]["model"] / report["masked_patch_mse"]["mean_image"]
    )
    intervals = report["intervals"]
    assert intervals["unit"] == "window" and intervals["resamples"] == 200
    for name, value in report["masked_patch_mse"].items():
        low, high = intervals["overall"][name]
        assert low <= value <= high
    assert set(intervals["per_layer"]) == set(report["per_layer"])
    low, high = intervals["per_layer"]["0"]["model"]
    assert low <= report["per_layer"]["0"]["model"] <= high


def test_three_splits_are_disjoint_deterministic_and_keep_the_old_held_out_share():
    paths = [f"pkg{i % 7}/File{i}.java" for i in range(2000)]
    splits = [split_of(p, 10, 10) for p in paths]
    assert splits == [split_of(p, 10, 10) for p in paths]  # the same in every run
    assert set(splits) == {"train", "validation", "test"}  # one split per file: disjoint by construction
    shares = {name: splits.count(name) / len(paths) for name in ("train", "validation", "test")}
    assert shares["train"] == pytest.approx(0.8, abs=0.04)
    assert shares["validation"] == pytest.approx(0.1, abs=0.03)
    assert shares["test"] == pytest.approx(0.1, abs=0.03)
    # buckets fixed once and for all by the SHA-256 of the path (not by Python's salted hash)
    assert [
        split_of(p, 20, 40) for p in ("Unicode.java", "Operators.java", "Literals.java", "Broken.java")
    ] == [
        "validation",
        "test",
        "test",
        "train",
    ]
    # the validation split is the old held-out share, so caches built before the test split keep meaning
    assert all((split_of(p, 10, 10) == "validation") == (split_of(p, 10) == "validation") for p in paths)
    assert "test" not in {split_of(p, 10) for p in paths}
    with pytest.raises(ValueError, match="0-100"):
        split_of("A.java", 60, 50)


def test_the_test_split_never_feeds_training_or_best_step_selection(
    tiny_model, corpus, tmp_path, monkeypatch
):
    from attnlens.apmae import workflow

    seen: dict[str, object] = {}
    real_train = workflow.train

    def spy(config, train_set, validation_images, out_dir, plan, **kw):
        seen["train_files"] = set(train_set.files)
        seen["validation_images"] = validation_images
        return real_train(config, train_set, validation_images, out_dir, plan, **kw)

    monkeypatch.setattr(workflow, "train", spy)
    cache = tmp_path / "cache"
    summary = workflow.train_from_corpus(
        tiny_model,
        corpus,
        config=APMAEConfig.tiny(),
        cache_dir=cache,
        out_dir=tmp_path / "run",
        plan=TrainPlan(steps=2, batch_size=4, eval_every=1, checkpoint_every=1),
        windows=16,
        heads_fraction=0.5,
        heldout_percent=25,
        test_percent=25,
        source="windows",
        max_file_bytes=100_000,
        correct_only=False,
        resume=False,
        device=torch.device("cpu"),
        progress=False,
    )
    test = load_patterns(cache, split="test", correct_only=False)
    validation = load_patterns(cache, split="validation", correct_only=False)
    assert len(test) > 0 and len(validation) > 0
    assert set(test.files).isdisjoint(seen["train_files"])
    assert all(split_of(f, 25, 25) == "train" for f in seen["train_files"])
    # the best step is picked on validation images only (a fixed subsample of them; here all)
    pick = torch.randperm(len(validation), generator=torch.Generator().manual_seed(0))[:4096]
    assert torch.equal(seen["validation_images"], validation.images[pick])
    assert summary["selected_on"] == "validation"
    assert summary["test_patterns"] == len(test) and summary["test_windows"] == len(set(test.window.tolist()))
    assert "best_validation_mse" in summary and all("validation_mse" in h for h in summary["history"])


def test_train_and_eval_commands(corpus, tmp_path):
    from attnlens.cli import app

    runner = CliRunner()
    data_dir = tmp_path / "data"
    common = ["--data-dir", str(data_dir)]
    train_args = [
        *common,
        "train-apmae",
        "--model", "tiny-starcoder2", "--corpus", str(corpus), "--size", "tiny", "--source", "windows",
        "--windows", "16", "--validation-percent", "25", "--test-percent", "25", "--include-incorrect",
        "--steps", "6", "--batch-size", "8", "--warmup", "1", "--eval-every", "3", "--checkpoint-every", "3",
        "--threads", "1",
    ]  # fmt: skip
    done = runner.invoke(app, train_args)
    assert done.exit_code == 0, done.output
    run = data_dir / "checkpoints" / "apmae-tiny-starcoder2-mae"
    assert (run / "best" / "model.safetensors").is_file()
    again = runner.invoke(app, train_args)
    assert isinstance(again.exception, InvalidInput) and "--resume" in again.exception.message
    png = tmp_path / "recon.png"
    done = runner.invoke(app, [*common, "eval-apmae", "--checkpoint", str(run / "best"), "--png", str(png)])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["trained_steps"] == 6 and report["decoder_mode"] == "mae"
    assert report["split"] == "test" and "test_set" not in report  # read from its own cache
    assert report["mean_image_from"].startswith("the training split")
    assert all(
        split_of(f, 25, 25) == "test"
        for f in load_patterns(Path(report["cache"]), split="test", correct_only=False).files
    )
    assert png.stat().st_size > 0
    done = runner.invoke(
        app, [*common, "eval-apmae", "--checkpoint", str(run / "best"), "--split", "validation"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["split_note"].startswith("validation split")


def test_eval_without_a_cache_rebuilds_the_test_set_from_the_corpus(tmp_path):
    """A fresh clone has the checkpoint but not its pattern cache: eval-apmae cuts the test windows again
    from the corpus, caches their patterns in the data folder, and scores them."""
    import shutil

    from attnlens.cli import app

    runner = CliRunner()
    data_dir = tmp_path / "data"
    common = ["--data-dir", str(data_dir)]
    cache, run = tmp_path / "cache", tmp_path / "run"
    done = runner.invoke(app, [
        *common, "train-apmae", "--model", "tiny-starcoder2", "--corpus", str(JAVA_FIXTURES),
        "--size", "tiny", "--source", "windows", "--windows", "6",
        "--validation-percent", "20", "--test-percent", "40", "--include-incorrect",
        "--cache", str(cache), "--out", str(run), "--steps", "2", "--batch-size", "4",
        "--warmup", "1", "--eval-every", "1", "--checkpoint-every", "1", "--threads", "1",
    ])  # fmt: skip
    assert done.exit_code == 0, done.output
    in_cache = load_patterns(cache, split="test", correct_only=False)
    assert set(in_cache.files) == {"Literals.java", "Operators.java"}
    shutil.rmtree(cache)  # as on another machine

    evaluate_args = [
        *common,
        "eval-apmae",
        "--checkpoint",
        str(run / "best"),
        "--png",
        str(tmp_path / "r.png"),
    ]
    done = runner.invoke(app, evaluate_args)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    built = report["test_set"]
    assert report["split"] == "test" and built["windows"] == 2 and built["matches_plan"]
    assert Path(built["folder"]).parent == data_dir / "apmae-test"
    rebuilt = load_patterns(Path(built["folder"]), split="test", correct_only=False)
    assert torch.equal(rebuilt.images, in_cache.images)  # the very patterns the training cache held
    assert report["patterns"] == len(in_cache) and report["files"] == 2
    assert report["mean_image_from"].startswith("the other windows")
    assert report["intervals"]["unit"] == "window"
    again = runner.invoke(app, evaluate_args)  # reuses the built set
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["masked_patch_mse"] == report["masked_patch_mse"]

    done = runner.invoke(app, [*evaluate_args, "--split", "validation"])
    assert isinstance(done.exception, InvalidInput) and "not on this machine" in done.exception.message
    done = runner.invoke(app, [*evaluate_args, "--corpus", str(tmp_path / "nowhere")])
    assert done.exit_code != 0 and "--corpus" in str(done.exception)


def test_a_cache_without_a_test_split_is_not_scored_as_one(tiny_model, corpus, tmp_path):
    from attnlens.apmae.workflow import evaluate_checkpoint

    cache = tmp_path / "cache"
    build_cache(tiny_model, corpus, cache, spec=spec_for(tiny_model, corpus), windows=8, progress=False)
    assert split_counts(cache, correct_only=False)["test"]["patterns"] == 0
    torch.manual_seed(0)
    APMAE(APMAEConfig.tiny()).save_pretrained(tmp_path / "ckpt")
    with pytest.raises(InvalidInput, match="--split validation"):
        evaluate_checkpoint(tmp_path / "ckpt", cache_dir=cache, png=None, device="cpu")
    report = evaluate_checkpoint(
        tmp_path / "ckpt",
        cache_dir=cache,
        png=None,
        device="cpu",
        split="validation",
        correct_only=False,
        bootstrap=0,
    )
    assert "optimistic" in report["split_note"] and "intervals" not in report


def test_a_manifest_cuts_the_windows_it_names(tiny_model, tmp_path):
    from itertools import islice

    from attnlens.apmae.cache import CacheSpec, read_spec
    from attnlens.apmae.sources import iter_windows, window_digest
    from attnlens.apmae.testset import EvalSetPlan, WindowManifest, build_eval_set, plan_for

    stream = list(
        islice(
            iter_windows(
                tiny_model, JAVA_FIXTURES, context_tokens=32, seed=0, max_file_bytes=100_000, source="windows"
            ),
            5,
        )
    )
    unseen = stream[3:]  # as if a training cache had read the first 3 windows
    spec = spec_for(tiny_model, JAVA_FIXTURES)
    info = {"cache_spec": dict(vars(spec)), "train_patterns": 40, "heldout_patterns": 8}
    manifest = WindowManifest(
        name="tiny-unseen",
        description="windows 3-4",
        trained_on=info,
        windows=(*((w.file_path, w.end, len(w.target_ids)) for w in unseen), ("Gone.java", 40, 3)),
        digest=window_digest(unseen),
    )
    assert manifest.serves(info) and not manifest.serves({**info, "train_patterns": 41})
    plan = EvalSetPlan(
        name="tiny-unseen",
        spec=CacheSpec(**{**vars(spec), "selection": "manifest:tiny-unseen"}),
        windows=3,
        manifest=manifest,
        how="test",
    )
    folder = tmp_path / "set"
    record = build_eval_set(tiny_model, plan, folder, corpus=JAVA_FIXTURES, progress=False)
    assert record["windows"] == 2 and record["problems"] == ["Gone.java: not in " + str(JAVA_FIXTURES)]
    assert record["matches_plan"]  # the windows cut again are the ones the manifest was made from
    got = load_patterns(folder, split="test", correct_only=False)
    assert set(got.files) == {w.file_path for w in unseen}
    assert read_spec(folder).selection == "manifest:tiny-unseen"
    assert plan_for({"cache_spec": dict(vars(spec))}) is None  # no test split and no manifest: none


def test_the_default_checkpoint_has_a_test_manifest_of_unseen_files():
    from attnlens.apmae.load import DEFAULT_CHECKPOINT
    from attnlens.apmae.testset import SMOLLM2_JDK17_UNSEEN, plan_for

    info = json.loads((DEFAULT_CHECKPOINT / "training.json").read_text())
    plan = plan_for(info)
    assert plan is not None and plan.manifest is SMOLLM2_JDK17_UNSEEN
    assert plan.spec.selection == "manifest:smollm2-jdk17-unseen" and plan.windows == 128
    files = [name for name, _, _ in SMOLLM2_JDK17_UNSEEN.windows]
    assert len(set(files)) == len(files) == 128
    assert all(end >= 256 and 3 <= span <= 10 for _, end, span in SMOLLM2_JDK17_UNSEEN.windows)


@pytest.mark.slow
def test_the_default_test_manifest_is_the_stream_after_the_training_cache(models_cache):
    """Replays the default checkpoint's training stream over the JDK (tokenizer only, about 10 s): the
    manifest's windows are the 128 after the 576 its cache read, none from a file those 576 read."""
    from itertools import islice

    from attnlens.apmae.load import DEFAULT_CHECKPOINT
    from attnlens.apmae.sources import iter_windows, window_digest
    from attnlens.apmae.testset import SMOLLM2_JDK17_UNSEEN
    from attnlens.model.loading import load_tokenizer

    jdk = Path("/usr/lib/jvm/openjdk-17/lib/src.zip")
    if not jdk.is_file():
        pytest.skip("needs the JDK 17 sources (openjdk-17-source)")
    smollm2_tokenizer = load_tokenizer("smollm2", models_dir=models_cache)

    class Encoder:
        tokenizer = smollm2_tokenizer  # prepends no BOS: SmolLM2's prompts are file tokens only

        def encode(self, text: str) -> list[int]:
            return list(smollm2_tokenizer(text, add_special_tokens=False)["input_ids"])

    spec = json.loads((DEFAULT_CHECKPOINT / "training.json").read_text())["cache_spec"]
    stream = iter_windows(
        Encoder(), jdk, context_tokens=256, seed=spec["seed"], max_file_bytes=spec["max_file_bytes"],
        source=spec["source"],
    )  # fmt: skip
    windows = list(islice(stream, 576 + 128))
    trained, test = windows[:576], windows[576:]
    assert [(w.file_path, w.end, len(w.target_ids)) for w in test] == list(SMOLLM2_JDK17_UNSEEN.windows)
    assert window_digest(test) == SMOLLM2_JDK17_UNSEEN.digest
    assert {w.file_path for w in trained}.isdisjoint(w.file_path for w in test)
