"""`attnlens mine`: completion scenarios from a Java corpus into the project database."""

from __future__ import annotations

from typing import Annotated

import typer

from attnlens.cli.common import settings_of

SAVE_BATCH = 200  # scenarios per transaction: progress survives an interrupted run, re-runs add nothing twice


def register(app: typer.Typer) -> None:
    @app.command("mine")
    def mine(
        ctx: typer.Context,
        corpus: Annotated[
            str,
            typer.Option(
                "--corpus",
                help="A folder of .java files, a .zip/.jar of sources (e.g. a JDK's src.zip), a .jsonl file, "
                "or hf:<dataset id> (needs `datasets` and network).",
            ),
        ],
        tasks: Annotated[str, typer.Option(help="`all` or a comma-separated list of task names.")] = "all",
        per_task: Annotated[int | None, typer.Option(help="Scenarios per task (default: 1000).")] = None,
        model: Annotated[
            str | None, typer.Option(help="Model whose tokenizer builds the prompts (default: smollm2).")
        ] = None,
        context: Annotated[int | None, typer.Option(help="Prompt length in tokens (default: 256).")] = None,
        seed: Annotated[int | None, typer.Option(help="Seed of every random choice (default: 0).")] = None,
        shuffle: Annotated[
            bool, typer.Option(help="Read the corpus in a seeded random order (spreads scenarios over it).")
        ] = True,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Mine and print the table; store nothing.")
        ] = False,
    ) -> None:
        """Mine completion scenarios (13 tasks) from a Java corpus and store them in the database."""
        from tqdm import tqdm

        from attnlens.mining import MiningStats, fim_tokens_of, iter_corpus, mine_scenarios, parse_tasks
        from attnlens.model.loading import load_tokenizer

        settings = settings_of(ctx)
        merged = settings.model_dump()
        overrides = {"per_task": per_task, "context_tokens": context, "seed": seed}
        merged["mining"].update({k: v for k, v in overrides.items() if v is not None})
        if model:
            merged["model"]["name"] = model
        settings = type(settings).model_validate(merged)
        options, model_name = settings.mining, settings.model.name
        chosen = parse_tasks(tasks)

        tokenizer = load_tokenizer(
            model_name, models_dir=settings.models_dir, revision=settings.model.revision
        )
        fim = fim_tokens_of(tokenizer)
        mode = "FIM (PSM order)" if fim is not None else "left-to-right (no FIM tokens)"
        typer.echo(
            f"mining {corpus} for {model_name}: {mode}, {options.context_tokens} tokens, "
            f"{options.per_task} per task x {len(chosen)} tasks, seed {options.seed}"
        )
        stats = MiningStats()
        files = iter_corpus(
            corpus,
            max_file_bytes=options.max_file_bytes,
            stats=stats,
            shuffle_seed=options.seed if shuffle else None,
            jsonl_field=options.jsonl_field,
            hf_config=options.hf_config,
            hf_split=options.hf_split,
        )
        scenarios = mine_scenarios(
            files,
            tokenizer=tokenizer,
            fim=fim,
            tasks=chosen,
            per_task=options.per_task,
            context_tokens=options.context_tokens,
            seed=options.seed,
            stats=stats,
            max_target_tokens=options.max_target_tokens,
        )
        store = None if dry_run else _open(settings)
        stored: list[int] = []
        batch = []
        with tqdm(total=len(chosen) * options.per_task, unit="scenario", desc="mining") as progress:
            for scenario in scenarios:
                progress.update(1)
                progress.set_postfix(files=stats.files_mined, refresh=False)
                batch.append(scenario)
                if store is not None and len(batch) >= SAVE_BATCH:
                    stored += _save(store, batch, model_name)
                    batch = []
            if store is not None and batch:
                stored += _save(store, batch, model_name)

        typer.echo(stats.table(chosen))
        short = [t for t in chosen if stats.scenarios[t] < options.per_task]
        if short:
            typer.echo(
                "note: the corpus ran out before these tasks had "
                f"{options.per_task}: {', '.join(f'{t} ({stats.scenarios[t]})' for t in short)}"
            )
        if store is None:
            typer.echo("dry run: nothing stored")
        else:
            typer.echo(
                f"stored {len(set(stored))} scenarios in {store} (already present ones are kept, not doubled)"
            )
            store.dispose()


def _open(settings):
    from attnlens.store import open_store

    return open_store(settings)


def _save(store, batch, model_name: str) -> list[int]:
    from attnlens.store import save_scenarios

    with store.session(immediate=True) as session:
        return save_scenarios(session, batch, model_name=model_name)
