"""AP-MAE data, training and evaluation on the tiny StarCoder2: cache, split, resume, baselines, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from attnlens.apmae import APMAE, APMAEConfig
from attnlens.apmae.cache import build_cache, default_spec, load_patterns, mean_image
from attnlens.apmae.evaluate import evaluate, masked_errors
from attnlens.apmae.sources import is_heldout
from attnlens.apmae.train import TrainPlan, lr_at, train
from attnlens.errors import CheckpointMismatch, InvalidInput


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # On a busy 2-core machine OpenMP barriers make two threads far slower for models this small.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    train_part = load_patterns(cache, heldout=False, correct_only=False)
    held = load_patterns(cache, heldout=True, correct_only=False)
    windows = set(train_part.window.tolist()) | set(held.window.tolist())
    assert windows == set(range(10))  # resumed, no window cached twice or skipped
    assert len(train_part) + len(held) == 10 * 4 * 2  # 4 layers x int(0.5 * 4) heads
    images = train_part.images.float()
    assert images.shape[1:] == (32, 32) and train_part.images.dtype == torch.float16
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    assert torch.all(images.triu(1) == 0)
    # the held-out split is decided by file, so no file is on both sides
    assert set(train_part.files).isdisjoint(held.files)
    assert all(is_heldout(f, 50) for f in held.files)
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
    data = load_patterns(cache, heldout=False, correct_only=False)
    held = load_patterns(cache, heldout=True, correct_only=False).images
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
    held = load_patterns(cache, heldout=True, correct_only=False)
    torch.manual_seed(0)
    report = evaluate(APMAE(APMAEConfig.tiny()), held, mean_image(cache, correct_only=False))
    assert report["patterns"] == len(held)
    assert set(report["masked_patch_mse"]) == {"model", "mean_image", "mean_visible"}
    assert set(report["per_layer"]) == {str(layer) for layer in set(held.layer.tolist())}
    assert report["ratio_to_mean_image"] == pytest.approx(
        report["masked_patch_mse"]["model"] / report["masked_patch_mse"]["mean_image"]
    )


def test_train_and_eval_commands(corpus, tmp_path):
    from attnlens.cli import app

    runner = CliRunner()
    data_dir = tmp_path / "data"
    common = ["--data-dir", str(data_dir)]
    train_args = [
        *common,
        "train-apmae",
        "--model", "tiny-starcoder2", "--corpus", str(corpus), "--size", "tiny", "--source", "windows",
        "--windows", "8", "--heldout-percent", "50", "--include-incorrect",
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
    assert png.stat().st_size > 0
