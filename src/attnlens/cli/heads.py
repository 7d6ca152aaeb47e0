"""`attnlens heads profile|backfill|probe`: what the heads of the served model do.

`profile` prints every head's labels (or one head's profile) from the atlas's stored scores, the same
numbers GET /api/heads and GET /api/heads/{name} serve; `backfill` computes the relational scores of
inferences stored before they existed (a resumable `head_scores` job); `probe` runs the repeated-random-
token probe and compares its induction and previous-token heads with the atlas's labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from attnlens.cli.common import run_job_with_progress, settings_of

heads_app = typer.Typer(help="What heads do: profiles, labels, the score backfill and the probe.")

ModelOption = Annotated[str | None, typer.Option(help="Target model (default: model.name).")]


def register(app: typer.Typer) -> None:
    app.add_typer(heads_app, name="heads")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@heads_app.command("profile")
def profile(
    ctx: typer.Context,
    head: Annotated[str | None, typer.Option(help="One head, e.g. L3H5 (default: every head).")] = None,
    model: ModelOption = None,
) -> None:
    """Every head's labels with their medians, or one head's full profile (median and deciles per score)."""
    from attnlens.analysis.head_profiles import head_profiles
    from attnlens.contracts.head_scores import HEAD_SCORES, head_score
    from attnlens.errors import NotFound
    from attnlens.heads import HeadRef
    from attnlens.store import open_store
    from attnlens.store.head_scores import load_score_table

    settings = settings_of(ctx)
    name = model or settings.model.name
    store = open_store(settings)
    with store.session() as session:
        profiles = head_profiles(load_score_table(session, name))
    typer.echo(
        f"{name}: {profiles.n_inferences} scored mined inferences"
        f" ({profiles.n_inferences_unscored} without scores, left out: `attnlens heads backfill`)"
    )
    if head is None:
        for ref, p in profiles.heads.items():
            labels = ", ".join(f"{head_score(s).label} {_fmt(p.median(s))}" for s in p.labels) or "-"
            typer.echo(f"{ref.name:>8}  {p.n_patterns:>6} patterns  {labels}")
        return
    one = profiles.get(HeadRef.parse(head))
    if one is None:
        raise NotFound(f"no scored patterns of head {head} for model {name!r}.")
    typer.echo(f"{one.head.name}: {one.n_patterns} patterns; labels are hypotheses (median >= threshold)")
    typer.echo(f"{'score':<22}{'n':>7}{'median':>9}{'typical':>9}{'thresh':>8}  deciles 10..90")
    for score in HEAD_SCORES:
        s = one.scores[score.name]
        deciles = " ".join(f"{v:.2f}" for v in s.deciles) if s.deciles else "does not apply to these inputs"
        mark = f"  <- {score.label}" if s.labelled else ""
        typer.echo(
            f"{score.name:<22}{s.n_applicable:>7}{_fmt(s.median):>9}{_fmt(profiles.typical[score.name]):>9}"
            f"{score.threshold:>8.2f}  {deciles}{mark}"
        )


@heads_app.command("backfill")
def backfill(
    ctx: typer.Context,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many inferences.")] = None,
) -> None:
    """Compute the relational head-type scores of the served model's inferences that lack them (re-runs the
    model on each prompt; resumable: re-run to carry on)."""
    from attnlens.contracts.job_parameters import head_scores_parameters
    from attnlens.contracts.jobs import HEAD_SCORES
    from attnlens.service.local import LocalWorker
    from attnlens.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    typer.echo(f"loading {settings.model.name}...")
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    worker.model, worker.apmae  # noqa: B018 - raise now, with the reason, if either failed to load
    parameters = head_scores_parameters(settings.model.name, limit)
    result = run_job_with_progress(settings, store, HEAD_SCORES, parameters, worker, "inference")
    typer.echo(json.dumps(result, indent=2, default=str))


@heads_app.command("probe")
def probe(
    ctx: typer.Context,
    length: Annotated[int, typer.Option(min=2, help="Random tokens per half (L).")] = 50,
    sequences: Annotated[int, typer.Option(min=1, help="Random sequences averaged over.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the random tokens.")] = 0,
    output: Annotated[
        Path | None, typer.Option(help="Write the per-head scores and agreement as JSON.")
    ] = None,
) -> None:
    """Run the repeated-random-token probe on the served model and compare its induction and previous-token
    heads with the atlas's labels (precision, recall, rank correlation)."""
    from dataclasses import asdict

    from attnlens.analysis.head_profiles import head_profiles
    from attnlens.atlas.probe import PROBE_KINDS, PROBE_THRESHOLD, agreement, atlas_score_name
    from attnlens.atlas.probe import repeated_random_tokens as run_probe
    from attnlens.contracts.head_scores import head_score
    from attnlens.model import TargetModel
    from attnlens.store import open_store
    from attnlens.store.head_scores import load_score_table

    settings = settings_of(ctx)
    model = TargetModel.from_settings(settings)
    result = run_probe(model, sequence_length=length, n_sequences=sequences, seed=seed)
    with open_store(settings).session() as session:
        profiles = head_profiles(load_score_table(session, model.info.name))
    report: dict[str, object] = {
        "model": model.info.name,
        "length": length,
        "sequences": sequences,
        "seed": seed,
    }
    for kind in PROBE_KINDS:
        scores = result.head_scores(kind)
        score_name = atlas_score_name(kind)
        medians = {ref.name: p.median(score_name) for ref, p in profiles.heads.items()}
        found = agreement(
            scores, medians, probe_threshold=PROBE_THRESHOLD, atlas_threshold=head_score(score_name).threshold
        )
        top = sorted(scores.items(), key=lambda item: -item[1])[:5]
        typer.echo(f"{kind}: probe heads (>= {PROBE_THRESHOLD}): {', '.join(found.probe_heads) or 'none'}")
        typer.echo(
            f"  atlas labels ({profiles.n_inferences} inferences): {', '.join(found.atlas_heads) or 'none'}"
        )
        typer.echo(
            f"  both: {', '.join(found.both) or 'none'}; precision {_fmt(found.precision)}, recall "
            f"{_fmt(found.recall)}, Spearman {_fmt(found.spearman)} over {found.n_heads} heads"
        )
        typer.echo("  strongest: " + ", ".join(f"{name} {value:.2f}" for name, value in top))
        report[kind] = {"agreement": asdict(found), "scores": scores}
    if output is not None:
        output.write_text(json.dumps(report, indent=2))
        typer.echo(f"wrote {output}")


@heads_app.command("import-catalogue")
def import_catalogue_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help='JSON list of {"model", "head", "label", "source"} entries.')],
) -> None:
    """Import a catalogue of known heads as notes (kept apart from the computed labels; idempotent)."""
    from attnlens.contracts.notes import parse_catalogue
    from attnlens.errors import InvalidInput
    from attnlens.store import open_store
    from attnlens.store.notes import import_catalogue

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"cannot read the catalogue {path}: {error}") from error
    entries = parse_catalogue(data)
    with open_store(settings_of(ctx)).session(immediate=True) as session:
        added, skipped = import_catalogue(session, entries)
    typer.echo(f"imported {added} catalogue entries ({skipped} already stored) from {path}")


@heads_app.command("notes")
def export_notes_command(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option(help="Write the JSON here instead of printing it.")] = None,
) -> None:
    """Every note, user label and catalogue entry, as JSON (each with its origin)."""
    from attnlens.store import open_store
    from attnlens.store.notes import all_notes

    with open_store(settings_of(ctx)).session() as session:
        rows = [
            {
                "id": r.id, "model": r.model_name, "kind": r.kind, "target": r.target, "scope_id": r.scope_id,
                "label": r.label, "note": r.note, "origin": r.origin, "source_url": r.source_url,
                "author": r.author, "created_at": r.created_at.isoformat(),
            }
            for r in all_notes(session)
        ]  # fmt: skip
    text = json.dumps(rows, indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {len(rows)} notes to {output}")


@heads_app.command("across")
def across(
    ctx: typer.Context,
    other: Annotated[str, typer.Option(help="The model to compare with (in the same atlas).")],
    model: ModelOption = None,
    head: Annotated[str | None, typer.Option(help="Also list this head's nearest heads of OTHER.")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of heads for the AUC interval.")] = 1000,
) -> None:
    """Related heads across two models: whether heads with the same label (previous-token, sink, induction)
    are nearer each other in AP-MAE's space than random pairs, and one head's nearest heads of OTHER."""
    from attnlens.analysis.cross_model import head_distances, label_agreement
    from attnlens.analysis.head_profiles import head_profiles
    from attnlens.contracts.head_scores import head_score
    from attnlens.heads import HeadRef
    from attnlens.store import open_store
    from attnlens.store.head_moments import head_task_moments, shared_embedder
    from attnlens.store.head_scores import load_score_table

    settings = settings_of(ctx)
    name = model or settings.model.name
    store = open_store(settings)
    with store.session() as session:
        embedder = shared_embedder(session, name, other)
        found = head_distances(
            head_task_moments(session, name, embedder), head_task_moments(session, other, embedder)
        )
        labels = [
            {ref: p.labels for ref, p in head_profiles(load_score_table(session, m)).heads.items()}
            for m in (name, other)
        ]
    typer.echo(
        f"{name} ({len(found.heads_a)} heads) x {other} ({len(found.heads_b)} heads), embedder {embedder}, "
        f"{len(found.tasks)} shared tasks"
    )
    typer.echo(
        f"{'label':<18}{'heads':>9}{'same':>8}{'random':>8}  {'AUC [95%]':<21}{'row AUC [95%]':<21}"
        "nearest hit / chance"
    )
    for row in label_agreement(found, labels[0], labels[1], resamples=resamples):
        auc, row_auc = (
            "n/a" if a is None else f"{a.estimate:.2f} [{a.low:.2f}, {a.high:.2f}]"
            for a in (row.auc, row.row_auc)
        )
        typer.echo(
            f"{head_score(row.label).label:<18}{row.heads_a:>4} x{row.heads_b:<3}{_fmt(row.mean_same):>8}"
            f"{row.mean_all:>8.3f}  {auc:<21}{row_auc:<21}{row.nearest_hits}/{row.heads_a} / {row.chance:.1%}"
        )
    if head is not None:
        for ref, distance in found.nearest(HeadRef.parse(head), 5):
            tags = ", ".join(head_score(s).label for s in labels[1].get(ref, [])) or "-"
            typer.echo(f"  {ref.name:>8}  {distance:.3f}  {tags}")
