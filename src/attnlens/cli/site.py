"""`attnlens export-site DIR`: a static snapshot of the atlas that opens in a browser with no server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attnlens.cli.common import settings_of


def register(app: typer.Typer) -> None:
    app.command("export-site")(export_site)


def export_site(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Argument(help="Folder to write the pages into (new or empty).", metavar="DIR")
    ],
    inference: Annotated[
        list[int] | None,
        typer.Option(
            "--inference",
            help="A completion to give a page (repeatable). Default: for each task, the first (lowest-id) "
            "completion whose first token is right and the first whose first token is wrong.",
        ),
    ] = None,
    max_points: Annotated[
        int,
        typer.Option(help="Most map points to draw (a fixed sample of the map when it has more).", min=1),
    ] = 50_000,
    heads: Annotated[
        bool,
        typer.Option(
            help="Write heads.html: each head's stored statistics over the atlas (median across "
            "completions). It reads every stored head row: about 4 s per 100,000 head patterns on 2 CPU "
            "cores (5 s for 140,400, the demo atlas's size)."
        ),
    ] = True,
    model: Annotated[
        str | None, typer.Option(help="Model whose atlas to export (default: model.name).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Write into a non-empty folder (same-named files replaced).")
    ] = False,
) -> None:
    """Write a static snapshot of the atlas into DIR: index.html (model, AP-MAE checkpoint, counts, tasks
    with first-token accuracy, correctness predictors, the heads that matter per task), one page per chosen
    completion (code with the hole, the layer x head grid of stored thumbnails with each head's statistics
    on hover), heads.html and map.html (the newest 2-D map, drawn by plotly.min.js written beside the
    pages). It reads the database only: no model, no server. Full patterns, search and ablations are left
    out (they need the model)."""
    from attnlens.atlas.site import SiteRequest
    from attnlens.atlas.site import export_site as write_site
    from attnlens.store import open_store

    settings = settings_of(ctx)
    request = SiteRequest(
        out_dir=out,
        model_name=model or settings.model.name,
        inference_ids=tuple(inference or ()),
        max_points=max_points,
        heads=heads,
        force=force,
    )
    report = write_site(settings, open_store(settings), request, lambda message: typer.echo(f"  {message}"))
    typer.echo(
        f"wrote {len(report.files)} files ({len(report.inference_ids)} completion pages"
        + (
            f", map {report.map_points[0]:,} of {report.map_points[1]:,} points"
            if report.map_points
            else ", no map yet"
        )
        + (f"; heads.html {report.heads_left_out}" if report.heads_left_out else "")
        + ")"
    )
    typer.echo(f"open {report.index.resolve()} in a browser (no server needed)")
