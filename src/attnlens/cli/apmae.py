"""`attnlens train-apmae` and `attnlens eval-apmae`: train an AP-MAE on a target model's attention over a
Java corpus (best step picked on a validation split), and score a checkpoint on a test split it never saw
against two baselines, on its own model's patterns or another's (`--model`; `--matrix` shows them all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from attnlens.cli.common import settings_of


def register(app: typer.Typer) -> None:
    @app.command("train-apmae")
    def train_apmae(
        ctx: typer.Context,
        corpus: Annotated[Path, typer.Option(help="Folder or .zip of .java files (e.g. the JDK's src.zip).")],
        model: Annotated[
            str | None, typer.Option(help="Target model preset, hub id or folder (default: settings).")
        ] = None,
        size: Annotated[
            str, typer.Option(help="AP-MAE size: smollm2-default, paper, tiny, or a config.json path.")
        ] = "smollm2-default",
        decoder_mode: Annotated[
            str, typer.Option(help="mae (correct MAE decoder) or paper (released behaviour).")
        ] = "mae",
        out: Annotated[
            Path | None, typer.Option(help="Run folder (default: <data>/checkpoints/apmae-<model>-<mode>).")
        ] = None,
        cache: Annotated[
            Path | None, typer.Option(help="Pattern cache folder (default: <data>/apmae-cache/<model>).")
        ] = None,
        windows: Annotated[int, typer.Option(help="Corpus windows (inferences) to cache.", min=1)] = 1000,
        heads_fraction: Annotated[
            float,
            typer.Option(
                help="Share of each layer's heads kept per inference (paper: 0.25).", min=0.0, max=1.0
            ),
        ] = 0.25,
        heldout_percent: Annotated[
            int,
            typer.Option(
                "--validation-percent",
                "--heldout-percent",
                help="Percent of corpus files in the validation split (the best step is picked on it).",
                min=1,
                max=50,
            ),
        ] = 10,
        test_percent: Annotated[
            int,
            typer.Option(
                help="Percent of corpus files in the test split (never trained or selected on; eval-apmae).",
                min=0,
                max=50,
            ),
        ] = 10,
        source: Annotated[
            str, typer.Option(help="auto, mining (attnlens.mining) or windows (cut here).")
        ] = "auto",
        include_incorrect: Annotated[
            bool,
            typer.Option(help="Also train on inferences whose first token was wrong (paper: correct only)."),
        ] = False,
        steps: Annotated[int, typer.Option(help="Optimizer steps.", min=1)] = 10_000,
        batch_size: Annotated[int, typer.Option(help="Patterns per step.", min=1)] = 128,
        lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
        warmup: Annotated[
            int, typer.Option(help="Linear warmup steps before the cosine decay.", min=0)
        ] = 200,
        checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.", min=1)] = 500,
        eval_every: Annotated[int, typer.Option(help="Steps between held-out checks.", min=1)] = 500,
        max_minutes: Annotated[
            float | None, typer.Option(help="Stop (and save) after this much wall time.")
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed for data sampling, masking and init.")] = 0,
        threads: Annotated[
            int | None, typer.Option(help="CPU threads for torch (1 is robust on a busy machine).")
        ] = None,
        resume: Annotated[bool, typer.Option("--resume", help="Continue the run saved in --out.")] = False,
    ) -> None:
        """Cache attention patterns of MODEL over CORPUS, then train an AP-MAE on them (resumable)."""
        import torch

        from attnlens.apmae.train import TrainPlan
        from attnlens.apmae.workflow import model_config, train_from_corpus
        from attnlens.model import TargetModel
        from attnlens.model.loading import resolve_device

        settings = settings_of(ctx)
        if threads:
            torch.set_num_threads(threads)
        name = model or settings.model.name
        slug = Path(name).name.replace("/", "-")
        out = out or settings.checkpoints_dir / f"apmae-{slug}-{decoder_mode}"
        target = TargetModel.load(
            name, models_dir=settings.models_dir, device=settings.model.device, dtype=settings.model.dtype
        )
        config = model_config(size, decoder_mode=decoder_mode, source_length=None)
        cache = (
            cache or settings.data_dir / "apmae-cache" / f"{slug}-{config.source_length}-{config.max_length}"
        )
        plan = TrainPlan(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            warmup_steps=warmup,
            seed=seed,
            checkpoint_every=checkpoint_every,
            eval_every=eval_every,
            max_minutes=max_minutes,
        )
        summary = train_from_corpus(
            target,
            corpus,
            config=config,
            cache_dir=cache,
            out_dir=out,
            plan=plan,
            windows=windows,
            heads_fraction=heads_fraction,
            heldout_percent=heldout_percent,
            test_percent=test_percent,
            source=source,
            max_file_bytes=settings.mining.max_file_bytes,
            correct_only=not include_incorrect,
            resume=resume,
            device=resolve_device(settings.apmae.device),
        )
        summary.pop("history", None)
        typer.echo(json.dumps(summary, indent=2))
        typer.echo(f"checkpoints: {out / 'best'} (lowest validation MSE), {out / 'last'}")

    @app.command("eval-apmae")
    def eval_apmae(
        ctx: typer.Context,
        checkpoint: Annotated[
            str,
            typer.Option(
                help="`default`, a checkpoint folder, or a hub id (LaughingLogits/AP-MAE-SC2-3B, -7B, -15B: "
                "downloaded once into <data>/models/hub, paper decoder)."
            ),
        ] = "default",
        model: Annotated[
            str | None,
            typer.Option(
                help="Score the patterns of this target model (preset, hub id or folder) instead of the one "
                "the checkpoint trained on: its test set cut again in this model's tokens."
            ),
        ] = None,
        matrix: Annotated[
            bool,
            typer.Option(
                "--matrix",
                help="Print the recorded checkpoint x model matrix (<data>/apmae-eval/transfer.json) as "
                "Markdown, and evaluate nothing.",
            ),
        ] = False,
        cache: Annotated[
            Path | None,
            typer.Option(
                help="Pattern cache to score (default: the one it was trained on if here, else a test set "
                "rebuilt from the corpus into <data>/apmae-test/)."
            ),
        ] = None,
        split: Annotated[
            str,
            typer.Option(
                help="test (never trained or selected on) or validation (the best step was picked on it)."
            ),
        ] = "test",
        corpus: Annotated[
            Path | None,
            typer.Option(help="Where the training corpus is, if not where training.json says (JDK src.zip)."),
        ] = None,
        png: Annotated[Path | None, typer.Option(help="Where to write originals vs reconstructions.")] = None,
        decoder_mode: Annotated[
            str | None, typer.Option(help="Override the decoder mode (e.g. paper for released weights).")
        ] = None,
        bootstrap: Annotated[
            int, typer.Option(help="Bootstrap resamples of windows for 95% intervals (0: none).", min=0)
        ] = 1000,
        threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    ) -> None:
        """Print JSON: masked-patch MSE of CHECKPOINT and of two baselines on its test split (rebuilt from the
        corpus when no cache holds it), overall and per layer, with bootstrap intervals over windows. A
        test-split score with intervals is recorded in the transfer matrix (--matrix prints it)."""
        settings = settings_of(ctx)
        if matrix:
            from attnlens.apmae.transfer import read_transfer_matrix, transfer_markdown

            typer.echo(transfer_markdown(read_transfer_matrix(settings.data_dir)))
            return
        import torch

        from attnlens.apmae.transfer import record_evaluation, result_from_report
        from attnlens.apmae.workflow import evaluate_checkpoint
        from attnlens.model import TargetModel

        if threads:
            torch.set_num_threads(threads)
        png = png or settings.data_dir / "apmae-eval" / "reconstruction.png"

        def load_target(name: str) -> TargetModel:
            return TargetModel.load(
                name, models_dir=settings.models_dir, device=settings.model.device,
                dtype=settings.model.dtype, allow_pickle_weights=settings.model.allow_pickle_weights,
            )  # fmt: skip

        report = evaluate_checkpoint(
            checkpoint,
            cache_dir=cache,
            png=png,
            device=settings.apmae.device,
            decoder_mode=decoder_mode,
            split=split,
            data_dir=settings.data_dir,
            corpus=corpus,
            load_target=load_target,
            bootstrap=bootstrap,
            target_model=model,
            models_dir=settings.models_dir,
            allow_pickle_weights=settings.apmae.allow_pickle_weights,
        )
        if split == "test" and bootstrap > 0:
            report["transfer_matrix"] = str(record_evaluation(settings.data_dir, result_from_report(report)))
        typer.echo(json.dumps(report, indent=2))
