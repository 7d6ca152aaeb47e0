"""`attnlens export-site`: a static snapshot of an atlas that opens from file:// with no server.

Reads the atlas's database through the store's query functions (no model, no worker, no HTTP) and writes
plain HTML pages (`site_render`): `index.html` (model, AP-MAE checkpoint, counts, tasks with first-token
accuracy, the correctness predictors, the heads that matter per task), one `inference-<id>.html` per chosen
completion (the code with the hole and the layer x head grid of stored thumbnails), `heads.html` (each
head's stored statistics summarised over the atlas) and `map.html` (the newest 2-D map, drawn by the
plotly.min.js of the Python plotly package, written once beside the pages). Full patterns, search and
ablations need the model and are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from attnlens.analysis.stats import wilson_interval
from attnlens.atlas import site_html
from attnlens.atlas import site_render as render
from attnlens.atlas.site_pages import (
    GridCell,
    HeadSummary,
    InferenceCard,
    InferenceView,
    MapView,
    Overview,
    TaskHeads,
    TaskRow,
)
from attnlens.config import Settings
from attnlens.contracts.models import split_prompt
from attnlens.contracts.tasks import BY_NAME
from attnlens.errors import AttnLensError, InvalidInput, NotFound
from attnlens.heads import HeadRef
from attnlens.store import Store
from attnlens.store.analyses import (
    cluster_labels,
    clustering_clusters,
    important_heads,
    latest_clustering,
    latest_map,
    map_points,
    map_size,
    newest_predictors,
)
from attnlens.store.codecs import unpack_thumbnail
from attnlens.store.index_rows import space_inferences
from attnlens.store.inferences import (
    InferenceFilter,
    atlas_counts,
    atlas_models,
    get_inference,
    inference_heads,
    list_inferences,
    prompt_ids_of,
    task_counts,
)
from attnlens.store.models import MINED, PASTED, Inference

DEFAULT_MAX_POINTS = 50_000
TOP_HEADS = site_html.TOP_HEADS
STATS = tuple(site_html.STAT_LABELS)  # the stored statistics of a head pattern, as HeadPattern names them
_PAGE = 500  # inferences read per query while summarising the heads

Progress = Callable[[str], None]
DEFAULT_CHOICE = (
    "for each task, the first (lowest-id) completion whose first token is right and the first whose first "
    "token is wrong"
)


@dataclass(frozen=True)
class SiteRequest:
    """What to export, and where. Empty `inference_ids`: the default choice (`default_inference_ids`)."""

    out_dir: Path
    model_name: str
    inference_ids: tuple[int, ...] = ()
    max_points: int = DEFAULT_MAX_POINTS
    heads: bool = True
    force: bool = False


@dataclass(frozen=True)
class SiteReport:
    """What was written: the index page, every file, the exported inferences, the map's points shown and
    in all (None: no map), and why `heads.html` is missing (None: it was written)."""

    index: Path
    files: list[Path]
    inference_ids: list[int]
    map_points: tuple[int, int] | None
    heads_left_out: str | None


def export_site(
    settings: Settings, store: Store, request: SiteRequest, progress: Progress = lambda _m: None
) -> SiteReport:
    """Write the snapshot into `request.out_dir`; refuses a non-empty folder unless `request.force`."""
    out = request.out_dir
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{out} is a file; name a folder for the snapshot.")
    if out.is_dir() and any(out.iterdir()) and not request.force:
        raise InvalidInput(
            f"{out} is not empty; name an empty or new folder, or pass --force to write into it "
            "(files of the same names are replaced, others are left as they are)."
        )
    if request.max_points < 1:
        raise InvalidInput("--max-points must be at least 1.")
    model = request.model_name
    ids = list(dict.fromkeys(request.inference_ids)) or default_inference_ids(store, model)
    views = [inference_view(settings, store, i) for i in ids]  # every id checked before a file is written
    out.mkdir(parents=True, exist_ok=True)
    overview = gather_overview(settings, store, model)
    overview.inferences = [v.card for v in views]
    overview.chosen_by = "named with --inference" if request.inference_ids else DEFAULT_CHOICE
    overview.heads_page = request.heads
    files: list[Path] = []

    def write(name: str, text: str) -> None:
        path = out / name
        path.write_text(text, encoding="utf-8")
        files.append(path)

    write(site_html.CSS_FILE, site_html.CSS)
    for number, view in enumerate(views, start=1):
        progress(f"inference {view.card.id} ({number} of {len(views)})")
        write(site_html.inference_file(view.card.id), render.inference_page(overview, view, ids))

    progress("map")
    map_view = gather_map(store, model, request.max_points)
    if map_view is not None:
        shown = f"{map_view.shown:,} of {map_view.total:,} points shown"
        overview.map_state = f"{shown} (map {map_view.map_id} of {map_view.created_at})"
        files.append(render.write_plotly_js(out))
    write(site_html.MAP_FILE, render.map_page(overview, map_view))

    heads_left_out = None
    if request.heads:
        summaries = summarise_heads(store, model, overview.heads, progress)
        overview.heads_state = f"{len(summaries)} heads over {overview.completions:,} completions"
        write(site_html.HEADS_FILE, render.heads_page(overview, summaries))
    else:
        heads_left_out = "not exported (--no-heads); export again without it for each head's statistics"
        overview.heads_state = heads_left_out
    write(site_html.INDEX_FILE, render.index_page(overview))
    points = (map_view.shown, map_view.total) if map_view is not None else None
    return SiteReport(out / site_html.INDEX_FILE, files, ids, points, heads_left_out)


def default_inference_ids(store: Store, model_name: str) -> list[int]:
    """The default choice (`DEFAULT_CHOICE`): per task of the model's mined completions, in name order,
    the first right one, then the first wrong one, where there is one."""
    chosen: list[int] = []
    with store.session() as session:
        for task in sorted(task_counts(session, model_name)):
            for correct in (True, False):
                where = InferenceFilter(
                    task=task, first_token_correct=correct, model_name=model_name, source=MINED
                )
                total, _rows = list_inferences(session, where, limit=1, offset=0)
                if total:
                    # Listings are newest first: the last row of the listing is the first completion.
                    _total, rows = list_inferences(session, where, limit=1, offset=total - 1)
                    chosen.append(rows[0].id)
    return chosen


def _card(inference: Inference) -> InferenceCard:
    scenario = inference.scenario
    return InferenceCard(
        id=inference.id,
        source=PASTED if inference.source == PASTED else MINED,
        task=scenario.task if scenario else None,
        file_path=scenario.corpus_file.path if scenario else None,
        target=scenario.target_text if scenario else None,
        completion=inference.completion_text,
        first_token_correct=inference.first_token_correct,
        span_correct=inference.span_correct,
        expected_prob=inference.expected_token_prob,
    )


def inference_view(settings: Settings, store: Store, inference_id: int) -> InferenceView:
    """One completion with its code around the hole (decoded by the model's tokenizer file, no model) and
    every head's stored thumbnail, statistics and cluster in the newest clustering."""
    with store.session() as session:
        inference = get_inference(session, inference_id)
        if inference is None:
            raise NotFound(f"no inference with id {inference_id}; see the ids on the app's Atlas page.")
        card = _card(inference)
        scenario = inference.scenario
        prefix, suffix, note = _code(settings, inference)
        rows = inference_heads(session, inference_id)
        clustering = latest_clustering(store, inference.model_name)
        labels = (
            cluster_labels(session, clustering.id, [r.id for r in rows]) if clustering is not None else {}
        )
        cells = [
            GridCell(
                name=r.head_ref.name, layer=r.layer, head=r.head,
                thumbnail=unpack_thumbnail(r.thumbnail, r.thumbnail_size),
                stats={name: float(getattr(r, name)) for name in STATS}, cluster=labels.get(r.id),
            )
            for r in rows
        ]  # fmt: skip
        return InferenceView(
            card=card,
            mode=scenario.mode if scenario else None,
            node_type=scenario.node_type if scenario else None,
            prefix=prefix,
            suffix=suffix,
            code_note=note,
            cells=cells,
            clustering_id=clustering.id if clustering is not None else None,
        )


def _code(settings: Settings, inference: Inference) -> tuple[str | None, str | None, str | None]:
    """(text before the hole, text after it, None), or (None, None, why) when it cannot be decoded."""
    from attnlens.tokens import TokenDecoder

    scenario = inference.scenario
    try:
        decoder = TokenDecoder.for_model(inference.model_name, settings.models_dir)
        ids = prompt_ids_of(inference)
    except AttnLensError as exc:
        return None, None, f"the code around the hole is not shown: {exc.message}"
    if scenario is None:
        return decoder.text(ids), "", None
    prefix, suffix = split_prompt(ids, scenario.mode, scenario.n_prefix_tokens, scenario.n_suffix_tokens)
    return decoder.text(prefix), decoder.text(suffix), None


def _when(moment: datetime | None) -> str:
    return "–" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def gather_overview(settings: Settings, store: Store, model: str) -> Overview:
    """The index page's facts, each from the store's own query (the same ones the app's API asks)."""
    counts = atlas_counts(store)
    with store.session() as session:
        per_task = task_counts(session, model)
        models = atlas_models(session)
        spaces = space_inferences(session)
    tasks = []
    for name in sorted(per_task):
        count = per_task[name]
        if not count.inferences:
            continue  # pasted completions only: not part of the atlas
        interval = wilson_interval(count.first_token_correct, count.inferences)
        spec = BY_NAME.get(name)
        tasks.append(
            TaskRow(
                name=name, description=spec.description if spec else "", control=bool(spec and spec.control),
                inferences=count.inferences, correct=count.first_token_correct,
                low=interval.low, high=interval.high,
            )
        )  # fmt: skip
    embedders = sorted(
        ((embedder or "none recorded", rows.count) for (m, embedder), rows in spaces.items() if m == model),
        key=lambda pair: (-pair[1], pair[0]),
    )
    predictors = newest_predictors(store, model)
    clustering = latest_clustering(store, model)
    return Overview(
        model=model,
        exported_at=_when(datetime.now(UTC)),
        models=models,
        embedders=embedders,
        configured_checkpoint=str(settings.apmae.checkpoint),
        counts=counts,
        tasks=tasks,
        predictors=predictors,
        heads=best_heads(store, model),
        clustering=None
        if clustering is None
        else f"clustering {clustering.id} of {_when(clustering.created_at)}",
        map_state=f"no map yet: run `attnlens atlas map --model {model}` (after `attnlens atlas build`)",
        heads_state="",
    )


def best_heads(store: Store, model: str, top: int = TOP_HEADS) -> list[TaskHeads]:
    """Per task, the heads that matter (`store.analyses.important_heads`: the app overview's rule)."""
    return [
        TaskHeads(
            task=r.task, kind=r.row.predictor.kind, accuracy=r.row.evaluation.accuracy,
            low=r.row.evaluation.accuracy_low, high=r.row.evaluation.accuracy_high, chance=r.chance,
            heads=[(h.name, h.mean_abs_shap, h.mean_shap) for h in r.heads],
        )
        for r in important_heads(store, model, top)
    ]  # fmt: skip


def gather_map(store: Store, model: str, max_points: int) -> MapView | None:
    """The newest finished map of the model, at most `max_points` of its points (the store's fixed,
    well-mixed sample: the same points on every export); None when there is no map."""
    pattern_map = latest_map(store, model)
    if pattern_map is None:
        return None
    clustering = latest_clustering(store, model)
    with store.session() as session:
        total = map_size(session, pattern_map.id)
        rows = list(
            map_points(
                session,
                pattern_map.id,
                clustering.id if clustering is not None else None,
                total=total,
                max_points=max_points,
            )
        )
    return MapView(
        map_id=pattern_map.id,
        name=pattern_map.name,
        created_at=_when(pattern_map.created_at),
        total=total,
        shown=len(rows),
        clustering_id=clustering.id if clustering is not None else None,
        rows=rows,
    )


def summarise_heads(
    store: Store, model: str, important: list[TaskHeads], progress: Progress = lambda _m: None
) -> list[HeadSummary]:
    """Every head's stored statistics over the model's mined completions (median and quartiles), its
    clusters in the newest clustering, and the tasks that rank it among their top heads. Reads each
    completion's head rows with the store's `inference_heads` (one query a completion)."""
    values: dict[tuple[int, int], list[list[float]]] = {}
    below: int | None = None
    read = 0
    with store.session() as session:
        while True:
            where = InferenceFilter(model_name=model, source=MINED, below_id=below)
            _total, rows = list_inferences(session, where, limit=_PAGE, offset=0)
            if not rows:
                break
            for inference in rows:
                for r in inference_heads(session, inference.id):
                    values.setdefault((r.layer, r.head), []).append([float(getattr(r, s)) for s in STATS])
            below = rows[-1].id
            read += len(rows)
            progress(f"head statistics: {read:,} completions read")
        clustering = latest_clustering(store, model)
        clusters = clustering_clusters(session, clustering.id) if clustering is not None else None
    real: dict[tuple[int, int], int] = {}
    noise: dict[tuple[int, int], int] = {}
    for c in clusters or []:
        key = (c.layer, c.head)
        if c.label < 0:
            noise[key] = noise.get(key, 0) + c.size
        else:
            real[key] = real.get(key, 0) + 1
    top_in: dict[str, list[str]] = {}
    for entry in important:
        for name, _abs, _signed in entry.heads:
            top_in.setdefault(name, []).append(entry.task or "all")
    out = []
    for (layer, head), stats in sorted(values.items()):
        q1, median, q3 = np.percentile(np.asarray(stats, dtype=np.float64), [25, 50, 75], axis=0)
        name = HeadRef(layer, head).name
        out.append(
            HeadSummary(
                name=name, layer=layer, head=head, n=len(stats),
                quartiles={s: (float(q1[i]), float(median[i]), float(q3[i])) for i, s in enumerate(STATS)},
                clusters=None if clusters is None else real.get((layer, head), 0),
                noise=None if clusters is None else noise.get((layer, head), 0),
                top_in=top_in.get(name, []),
            )
        )  # fmt: skip
    return out
