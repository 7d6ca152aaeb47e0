"""The pages of a static snapshot (`attnlens export-site`) as plain HTML: no modules, no fetches, so they
open from file:// (their building blocks: `site_html`). Every string from the database (paths, code, task
and kind names) goes through `html.escape`; thumbnails become small indexed PNG data URIs in the Viridis
colours; the map is a Plotly figure whose script is plotly.min.js, written once beside the pages and loaded
by a classic <script> tag.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from attnlens.atlas.site_html import (
    CATEGORICAL,
    GRID_CELL_PX,
    HEADS_FILE,
    INDEX_FILE,
    MAP_FILE,
    MAX_CONTEXT,
    PLOTLY_FILE,
    STAT_LABELS,
    SYMBOLS,
    TOP_HEADS,
    bar,
    e,
    inference_file,
    interval,
    num,
    page,
    panel,
    pct,
    png_uri,
    verdict,
    visible,
)
from attnlens.atlas.site_html import (
    card as card_html,
)
from attnlens.atlas.site_html import (
    note as note_html,
)
from attnlens.atlas.site_html import (
    table as table_html,
)
from attnlens.atlas.site_pages import (
    GridCell,
    HeadSummary,
    InferenceCard,
    InferenceView,
    MapView,
    Overview,
)

if TYPE_CHECKING:
    from attnlens.store.analyses import PredictorRow


def index_page(o: Overview) -> str:
    c = o.counts
    total, right = c.get("inferences", 0), c.get("inferences_first_token_correct", 0)
    models = ", ".join(e(m) for m in o.models) or "none"
    embedders = "".join(
        f'<p class="path">{e(name)}</p><p class="muted">{count:,} completions embedded by it</p>'
        for name, count in o.embedders
    )
    counts = (
        f'<dt>scenarios</dt><dd id="count-scenarios">{c.get("scenarios", 0):,}</dd>'
        f'<dt>inferences</dt><dd id="count-inferences">{total:,}</dd>'
        f'<dt>first token right</dt><dd id="count-right">{right:,} '
        f"({pct(right / total if total else None)})</dd>"
        f'<dt>head patterns</dt><dd id="count-patterns">{c.get("head_patterns", 0):,}</dd>'
        f"<dt>pasted (kept apart)</dt><dd>{c.get('pasted_inferences', 0):,}</dd>"
    )
    clustering = (
        e(o.clustering) if o.clustering else "no clustering yet: run <code>attnlens atlas cluster</code>"
    )
    heads = f'<a href="{HEADS_FILE}">Heads</a>' if o.heads_page else "Heads"
    cards = [
        card_html("Model", f'<p class="big" id="model-name">{e(o.model)}</p>',
              f'<p class="muted">models with completions in this database: {models}</p>'),
        card_html("AP-MAE checkpoint", embedders or '<p class="muted">no completions of this model yet</p>',
              f'<p class="muted small">configured in this install: {e(o.configured_checkpoint)}</p>'),
        card_html("Counts (this database)", f'<dl class="counts" id="counts">{counts}</dl>'),
        card_html("Analyses", f"<p>{clustering}</p>",
                  f'<p><a href="{MAP_FILE}">Map</a>: {e(o.map_state)}</p>',
                  f"<p>{heads}: {e(o.heads_state)}</p>"),
    ]  # fmt: skip
    body = [f"<h1>Atlas snapshot: {e(o.model)}</h1>", f'<div class="cards">{"".join(cards)}</div>']
    body += [_tasks(o), _predictors(o), _important_heads(o), _exported(o)]
    return page(o, "Overview", "index", "\n".join(body))


def _tasks(o: Overview) -> str:
    if not o.tasks:
        return panel("Tasks", '<p class="notice">No completions of this model yet: run '
                      "<code>attnlens atlas build</code>.</p>")  # fmt: skip
    rows = [
        f'<tr data-task="{e(t.name)}"><td title="{e(t.description)}">{e(t.name)}'
        f"{' <span class=muted>(control)</span>' if t.control else ''}</td>"
        f'<td class="num completions">{t.inferences:,}</td><td class="num right-count">{t.correct:,}</td>'
        f'<td class="num accuracy">{pct(t.correct / t.inferences)} '
        f'<span class="muted">[{pct(t.low)}, {pct(t.high)}]</span></td>'
        f"<td>{bar(t.correct / t.inferences)}</td></tr>"
        for t in o.tasks
    ]
    headers = ["task", "completions", "first token right", "first-token accuracy [95% CI]", ""]
    note = note_html(
        "The model's mined completions per task (pasted code is left out). Intervals: Wilson 95%."
    )
    return panel("Tasks", table_html(headers, rows, "task-table", numeric=(1, 2, 3)), note)


def _predictors(o: Overview) -> str:
    if not o.predictors:
        return panel("Correctness predictors", '<p class="notice">None trained yet for this model: run '
                      "<code>attnlens predictors train</code> (after a clustering).</p>",
                      ident="predictors")  # fmt: skip
    kinds = sorted({row.predictor.kind for row in o.predictors})
    by_task: dict[str, dict[str, PredictorRow]] = {}
    for row in o.predictors:
        by_task.setdefault(row.predictor.task or "all", {})[row.predictor.kind] = row
    lines = []
    for task in sorted(by_task):
        cells = by_task[task]
        chance = (next(iter(cells.values())).evaluation.details or {}).get("chance")
        tds = []
        for kind in kinds:
            found = cells.get(kind)
            if found is None:
                tds.append('<td class="muted">–</td>')
                continue
            ev = found.evaluation
            above = chance is not None and ev.accuracy_low > chance
            tds.append(
                f'<td class="{"above-chance" if above else ""}" '
                f'title="{ev.folds}-fold CV on {ev.n_rows} rows">'
                f"{interval(ev.accuracy, ev.accuracy_low, ev.accuracy_high)}"
                f' <span class="muted">· n={ev.n_rows}</span></td>'
            )
        lines.append(f'<tr data-task="{e(task)}"><td>{e(task)}</td><td class="num">{pct(chance)}</td>'
                     f'{"".join(tds)}</tr>')  # fmt: skip
    headers = ["task", "chance", *(f"{e(k)}: CV accuracy [95% CI]" for k in kinds)]
    note = note_html(
        "The newest predictor of each task and kind, cross-validated. Bold: the 95% interval lies above "
        "chance (the majority-class rate); an interval that contains chance cannot be told apart from always "
        "guessing "
        "the majority class on this many rows. <code>noise</code> is a control with arbitrary labels."
    )
    return panel("Correctness predictors", table_html(headers, lines, numeric=(1,)), note, ident="predictors")


def _important_heads(o: Overview) -> str:
    title = "Heads that matter, per task"
    if not o.heads:
        why = "no predictors yet" if not o.predictors else "no predictor of this model ranks heads"
        return panel(title, f'<p class="muted">None: {why}.</p>', ident="important-heads")
    rows = []
    for t in o.heads:
        heads = ", ".join(
            f'<span title="mean |SHAP| {a:.4f} · signed mean {s:+.4f}">{e(name)}</span> '
            f'<span class="muted">({s:+.3f})</span>'
            for name, a, s in t.heads
        )
        note = "" if t.above_chance else f' <span class="muted">· not above chance {pct(t.chance)}</span>'
        rows.append(
            f'<tr class="{"above-chance" if t.above_chance else "not-above"}"><td>{e(t.task or "all")}</td>'
            f'<td class="acc">{e(t.kind)}: {interval(t.accuracy, t.low, t.high)}{note}</td>'
            f"<td>{heads}</td></tr>"
        )
    headers = ["task", "predictor: CV accuracy [95% CI]", "top heads by mean |SHAP| (signed mean)"]
    note = note_html(
        "Per task, the most accurate predictor that ranks heads; a head ranks high when its pattern moves "
        "the "
        "predicted log-odds of a right completion most (mean |SHAP| over the training rows). Grey rows: the "
        "predictor is not distinguishable from chance, so its ranking is no evidence that those heads carry "
        "the task."
    )
    return panel(title, table_html(headers, rows), note, ident="important-heads")


def _exported(o: Overview) -> str:
    title = "Completions in this snapshot"
    if not o.inferences:
        return panel(title, '<p class="muted">None.</p>')
    return panel(title, note_html(f"Chosen: {e(o.chosen_by)}."), completion_table(o.inferences))


def completion_table(cards: Sequence[InferenceCard]) -> str:
    rows = [
        f'<tr><td><a href="{inference_file(c.id)}">#{c.id}</a></td><td>{e(c.task or "pasted")}</td>'
        f'<td class="path">{e(c.file_path or "")}</td><td><code>{e(c.target or "")}</code></td>'
        f"<td><code>{e(c.completion)}</code></td><td>{verdict(c.first_token_correct)}</td>"
        f'<td>{verdict(c.span_correct)}</td><td class="num">{num(c.expected_prob)}</td></tr>'
        for c in cards
    ]
    headers = ["id", "task", "file", "expected", "completion", "first token", "whole span", "p(expected)"]
    return table_html(headers, rows, "inference-list", numeric=(7,))


# --- inference-<id>.html -------------------------------------------------------------------------------


def _cluster(label: int | None) -> str:
    return "–" if label is None else "noise" if label < 0 else str(label)


def _cell_title(cell: GridCell) -> str:
    cluster = "" if cell.cluster is None else f" · cluster {_cluster(cell.cluster)}"
    stats = "\n".join(f"{STAT_LABELS[name][0]} {value:.3f}" for name, value in cell.stats.items())
    return f"{cell.name}{cluster}\n{stats}"


def head_grid(cells: Sequence[GridCell]) -> str:
    """A layer x head table of thumbnails; each cell's title names the head, its cluster and statistics."""
    if not cells:
        return '<p class="notice">This completion has no stored head patterns.</p>'
    n_layers = max(c.layer for c in cells) + 1
    n_heads = max(c.head for c in cells) + 1
    at = {(c.layer, c.head): c for c in cells}
    header = "".join(f"<th>H{h}</th>" for h in range(n_heads))
    rows = []
    for layer in range(n_layers):
        tds = []
        for head in range(n_heads):
            cell = at.get((layer, head))
            tds.append(
                "<td></td>"
                if cell is None
                else f'<td title="{e(_cell_title(cell))}" data-head="{cell.name}"><img alt="{cell.name}" '
                f'src="{png_uri(cell.thumbnail)}" width="{GRID_CELL_PX}" height="{GRID_CELL_PX}"></td>'
            )
        rows.append(f'<tr><th class="layer">L{layer}</th>{"".join(tds)}</tr>')
    body = f"<thead><tr><th></th>{header}</tr></thead><tbody>{''.join(rows)}</tbody>"
    return f'<table class="grid" id="head-grid">{body}</table>'


def _stats_table(cells: Sequence[GridCell]) -> str:
    headers = ["head", "cluster", *(f'<span title="{e(b)}">{e(a)}</span>' for a, b in STAT_LABELS.values())]
    rows = [
        f"<tr><td>{c.name}</td><td>{_cluster(c.cluster)}</td>"
        + "".join(f'<td class="num">{c.stats[s]:.3f}</td>' for s in STAT_LABELS)
        + "</tr>"
        for c in cells
    ]
    table = table_html(headers, rows, "head-stats", numeric=range(2, 7))
    return f"<details><summary>Every head's statistics as a table</summary>{table}</details>"


def _code(view: InferenceView) -> str:
    card = view.card
    if view.prefix is None or view.suffix is None:
        return f'<p class="notice">{e(view.code_note or "the code is not available")}</p>'
    prefix = view.prefix if len(view.prefix) <= MAX_CONTEXT else "…" + view.prefix[-MAX_CONTEXT:]
    suffix = view.suffix if len(view.suffix) <= MAX_CONTEXT else view.suffix[:MAX_CONTEXT] + "…"
    expected = (
        ""
        if card.target is None
        else f'<span class="expected">{visible(card.target)}</span><span class="sep"> → </span>'
    )
    title = "the hole: expected text → the model's completion (· space, → tab, ↵ line break)"
    completion = f'<span class="completion">{visible(card.completion)}</span>'
    hole = f'<span class="hole" id="hole" title="{e(title)}">{expected}{completion}</span>'
    # The hole in the middle of the box: the page's one script, plain and inline (no module, no fetch).
    scroll = (
        "<script>(function(){var p=document.getElementById('code'),h=document.getElementById('hole');"
        "p.scrollTop=Math.max(0,h.offsetTop-p.clientHeight/2);})();</script>"
    )
    legend = (
        '<div class="legend"><span class="key key-expected">expected</span> → '
        '<span class="key key-completion">model\'s completion</span>'
        "<span>white space in the hole: · space, → tab, ↵ line break, ∅ nothing</span></div>"
    )
    return f'<pre class="code" id="code">{e(prefix)}{hole}{e(suffix)}</pre>{legend}{scroll}'


def inference_page(o: Overview, view: InferenceView, order: Sequence[int]) -> str:
    card = view.card
    at = list(order).index(card.id)
    pager = [f'<a href="{INDEX_FILE}">all completions in this snapshot</a>']
    if at > 0:
        pager.insert(0, f'<a href="{inference_file(order[at - 1])}" id="previous">← #{order[at - 1]}</a>')
    if at + 1 < len(order):
        pager.append(f'<a href="{inference_file(order[at + 1])}" id="next">#{order[at + 1]} →</a>')
    facts = [
        '<span class="source-pasted">pasted</span>' if card.source == "pasted" else "",
        f"<span>task {e(card.task or 'pasted')}</span>",
        f'<span class="path" id="file-path">{e(card.file_path)}</span>' if card.file_path else "",
        f"<span>mode {e(view.mode or '–')}</span>",
        f"<span>node {e(view.node_type)}</span>" if view.node_type else "",
        f'<span id="first-token">first token {verdict(card.first_token_correct)}</span>',
        f"<span>whole span {verdict(card.span_correct)}</span>",
        f"<span>p(expected) {num(card.expected_prob)}</span>",
    ]
    clusters = (
        f"cluster labels from clustering {view.clustering_id}"
        if view.clustering_id is not None
        else "no clustering yet, so no cluster labels"
    )
    size = view.cells[0].thumbnail.shape[0] if view.cells else 0
    about = note_html(
        f"Each head's stored {size} × {size} thumbnail of its attention pattern (average-pooled, log scale "
        f'from 0 <span class="viridis"></span> to that head\'s largest value; zero above the diagonal). '
        "Hover "
        f"a head for its cluster and statistics ({clusters}). Its full pattern with token labels needs the "
        f"model: the live app shows it at <code>#/inference/{card.id}</code>."
    )
    stats = _definitions()
    grid = [about, head_grid(view.cells), _stats_table(view.cells) if view.cells else "", stats]
    body = [
        f'<div class="pager">{" ".join(pager)}</div>',
        f"<h1>Inference #{card.id}</h1>",
        f'<div class="facts">{"".join(facts)}</div>',
        panel("The code with the hole", _code(view)),
        panel("Heads: layer × head", *grid),
    ]
    return page(o, f"Inference #{card.id}", "inference", "\n".join(body))


# --- heads.html ----------------------------------------------------------------------------------------


def _definitions() -> str:
    items = "".join(f"<dt>{e(label)}</dt><dd>{e(text)}</dd>" for label, text in STAT_LABELS.values())
    return f'<dl class="counts small defs">{items}</dl>'


def _shade(value: float) -> str:
    """A cell's background in proportion to a value in [0, 1] (every statistic here lies there)."""
    return f"background: rgba(0, 114, 178, {0.32 * max(0.0, min(1.0, value)):.3f})"


def heads_page(o: Overview, heads: Sequence[HeadSummary]) -> str:
    if not heads:
        body = panel("Heads", '<p class="notice">No head patterns of this model yet: run '
                      "<code>attnlens atlas build</code>.</p>")  # fmt: skip
        return page(o, "Heads", "heads", body)
    rows = []
    for h in heads:
        stats = "".join(
            f'<td class="num" style="{_shade(median)}" title="quartiles {q1:.3f} – {q3:.3f}">'
            f"{median:.3f}</td>"
            for q1, median, q3 in (h.quartiles[s] for s in STAT_LABELS)
        )
        clusters = "–" if h.clusters is None else f"{h.clusters} (+ {h.noise or 0:,} noise)"
        rows.append(
            f'<tr data-head="{h.name}"><td>{h.name}</td><td class="num">{h.n:,}</td>{stats}'
            f'<td class="num">{clusters}</td><td>{", ".join(e(t) for t in h.top_in)}</td></tr>'
        )
    clustering = (
        e(o.clustering) if o.clustering else "no clustering yet: run <code>attnlens atlas cluster</code>"
    )
    about = note_html(
        f"Each head's stored statistics over the model's {o.completions:,} mined completions: the median "
        "across completions, shaded from 0 (white) to 1 (blue); hover a number for its quartiles. Clusters: "
        f"the head's clusters in the newest clustering ({clustering}) and how many of its patterns that "
        "clustering left as noise. Top head in: the tasks whose most accurate head-ranking predictor puts "
        f"this head among its top {TOP_HEADS} by mean |SHAP| (as on the overview)."
    )
    stat_headers = (f'<span title="{e(b)}">{e(a)}</span>' for a, b in STAT_LABELS.values())
    headers = ["head", "completions", *stat_headers, "clusters", "top head in"]
    table = table_html(headers, rows, "heads-table", numeric=range(1, 8))
    return page(o, "Heads", "heads", f"<h1>Heads</h1>{about}{_definitions()}{panel('Every head', table)}")


# --- map.html ------------------------------------------------------------------------------------------


def write_plotly_js(out: Path) -> Path:
    """Copy the Python plotly package's plotly.min.js beside the pages (once per snapshot)."""
    import plotly

    target = out / PLOTLY_FILE
    shutil.copyfile(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", target)
    return target


def map_figure_html(view: MapView) -> str:
    """The map as a Plotly WebGL scatter, one colour per task (a trace per task and first-token outcome,
    one legend entry per task), as a <div> and a classic inline script that needs plotly.min.js."""
    import plotly.graph_objects as go

    groups: dict[str, dict[str, list[tuple[float, ...]]]] = {}
    for x, y, pattern_id, layer, head, task, correct, cluster in view.rows:
        outcome = "right" if correct is True else "wrong" if correct is False else "unknown"
        point = (x, y, layer, head, pattern_id, -2 if cluster is None else cluster)
        groups.setdefault(task or "pasted", {}).setdefault(outcome, []).append(point)
    cluster_hover = "<br>cluster %{customdata[3]}" if view.clustering_id is not None else ""
    traces = []
    for i, task in enumerate(sorted(groups)):
        marker = {
            "size": 6 if view.shown <= 2000 else 4, "opacity": 0.7,
            "color": CATEGORICAL[i % len(CATEGORICAL)],
            "symbol": SYMBOLS[(i // len(CATEGORICAL)) % len(SYMBOLS)],
        }  # fmt: skip
        for j, (outcome, points) in enumerate(sorted(groups[task].items())):
            data = np.asarray(points, dtype=np.float64)
            hover = (
                "<b>L%{customdata[0]}H%{customdata[1]}</b> · pattern %{customdata[2]}"
                f"<br>task {e(task)} · first token {outcome}{cluster_hover}<extra></extra>"
            )
            traces.append(
                go.Scattergl(
                    x=data[:, 0].astype(np.float32), y=data[:, 1].astype(np.float32),
                    customdata=data[:, 2:].astype(np.int64), mode="markers", name=e(task), marker=marker,
                    legendgroup=task, showlegend=j == 0, hovertemplate=hover,
                )
            )  # fmt: skip
    figure = go.Figure(traces)
    figure.update_layout(
        height=720, margin={"l": 50, "r": 20, "t": 20, "b": 50}, template="plotly_white", hovermode="closest",
        legend={"title": {"text": "task (click to hide)"}, "itemsizing": "constant"},
        xaxis={"title": {"text": "map x"}}, yaxis={"title": {"text": "map y"}},
    )  # fmt: skip
    return figure.to_html(
        full_html=False, include_plotlyjs=False, div_id="map-plot", default_height="720px",
        config={"displaylogo": False, "responsive": True},
    )  # fmt: skip


def map_page(o: Overview, view: MapView | None) -> str:
    if view is None:
        body = f'<h1>Cluster map</h1><p class="notice" id="no-map">{e(o.map_state)}.</p>'
        return page(o, "Map", "map", body)
    sample = (
        " (a fixed, well-mixed sample by pattern id: the same points on every export)"
        if view.shown < view.total
        else ""
    )
    clusters = (
        f"clusters of clustering {view.clustering_id}: -1 noise, -2 not clustered"
        if view.clustering_id is not None
        else "no clustering yet"
    )
    about = note_html(
        f"Map {view.map_id} ({e(view.name)}, {e(view.created_at)}): the model's stored head patterns placed "
        "in 2-D by their AP-MAE embeddings, coloured by task (past 8 tasks the marker shape changes). "
        f"Hover a point for its head, pattern id, first-token correctness and cluster ({clusters}). "
        "Drag to zoom, double-click to reset; click a task in the legend to hide it."
    )
    body = (
        f'<h1>Cluster map</h1><p id="map-count"><b>{view.shown:,} of {view.total:,} points shown</b>'
        f"{sample}.</p>"
        f'{about}<section class="panel">{map_figure_html(view)}</section>'
    )
    return page(o, "Map", "map", body, head=f'\n<script src="{PLOTLY_FILE}"></script>')
