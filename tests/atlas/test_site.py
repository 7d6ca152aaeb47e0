"""`attnlens export-site`: a static snapshot of the tiny atlas, checked against the database itself.

Every figure the pages show is recomputed here with plain SQLAlchemy queries over the atlas's tables (not
the store functions the export uses), and strings from corpora are shown as text, never as markup."""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from attnlens.atlas.site import SiteRequest, export_site
from attnlens.cli import app
from attnlens.errors import InvalidInput, NotFound
from attnlens.store import open_store
from attnlens.store.models import (
    CorpusFile,
    HeadPattern,
    Inference,
    MapPoint,
    PatternMap,
    Predictor,
    PredictorEvaluation,
    Scenario,
)
from tests.browser.conftest import write_clustering_and_map
from tests.conftest import JAVA_FIXTURES, copy_atlas

EVIL_PATH = '<script>alert("path")</script>/Evil.java'
EVIL_COMPLETION = '</pre><script>alert("completion")</script>'
MAX_POINTS = 100  # below the tiny atlas's 192 map points: the map is a sample
# (task, kind, accuracy, low, high, chance, head importance as (name, mean |SHAP|, signed mean))
PREDICTORS = [
    ("identifiers", "clusters_catboost", 0.80, 0.70, 0.88, 0.50,
     [("L1H2", 0.30, 0.10), ("L0H0", 0.50, -0.20), ("L3H3", 0.10, 0.01), ("L2H1", 0.20, 0.05),
      ("L0H3", 0.05, 0.0), ("L1H1", 0.01, 0.0)]),
    ("identifiers", "embeddings_pca_logreg", 0.55, 0.40, 0.70, 0.50, [("L2H2", 0.9, 0.1)]),
    ("random", "embeddings_pca_logreg", 0.48, 0.33, 0.63, 0.52, []),
]  # fmt: skip


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval, written out here so the test does not share the code it checks."""
    z = 1.959963984540054
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if successes == 0 else centre - half), (1.0 if successes == n else centre + half)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def add_predictors(store, model_name: str) -> None:
    with store.session() as session:
        for task, kind, accuracy, low, high, chance, heads in PREDICTORS:
            predictor = Predictor(name=f"{model_name}/{task}/{kind}", kind=kind, model_name=model_name,
                                  task=task, parameters={}, n_train=40,
                                  blob=b"never loaded by an export")  # fmt: skip
            session.add(predictor)
            session.flush()
            importance = [{"name": n, "mean_abs_shap": a, "mean_shap": s} for n, a, s in heads]
            details = {"chance": chance, "head_importance": importance}
            session.add(PredictorEvaluation(predictor_id=predictor.id, n_rows=40, folds=5, accuracy=accuracy,
                                            accuracy_low=low, accuracy_high=high, brier=0.2,
                                            calibration_error=0.1, details=details))  # fmt: skip


@pytest.fixture(scope="module")
def atlas(tiny_atlas, tmp_path_factory):
    """(settings, store) of a private copy of the tiny atlas with a clustering, a map, predictors, and
    one completion whose file path and completion text hold markup."""
    settings, _store, _report = tiny_atlas
    data_dir = tmp_path_factory.mktemp("site-atlas") / "data"
    copy_atlas(settings.data_dir, data_dir)
    copied = settings.model_copy(update={"data_dir": data_dir})
    store = open_store(copied)
    write_clustering_and_map(store, copied.model.name)
    add_predictors(store, copied.model.name)
    with store.session() as session:
        evil = session.scalar(select(Inference).order_by(Inference.id).limit(1))  # a default page
        evil_file = CorpusFile(corpus="evil", path=EVIL_PATH, sha256="0" * 64, n_bytes=1)
        session.add(evil_file)
        session.flush()
        evil.scenario.corpus_file_id = evil_file.id
        evil.completion_text = EVIL_COMPLETION
    return copied, store


@pytest.fixture(scope="module")
def site(atlas, tmp_path_factory) -> Path:
    settings, store = atlas
    out = tmp_path_factory.mktemp("site") / "snapshot"
    request = SiteRequest(out_dir=out, model_name=settings.model.name, max_points=MAX_POINTS)
    report = export_site(settings, store, request)
    assert report.index == out / "index.html" and report.heads_left_out is None
    return out


def first_ids(store, model_name: str) -> list[int]:
    """Per task in name order: the lowest-id mined completion with a right first token, then a wrong one."""
    ids = []
    with store.session() as session:
        tasks = session.scalars(select(Scenario.task).distinct().order_by(Scenario.task)).all()
        for task in tasks:
            for correct in (True, False):
                found = session.scalar(
                    select(func.min(Inference.id))
                    .join(Scenario, Scenario.id == Inference.scenario_id)
                    .where(Scenario.task == task, Inference.first_token_correct.is_(correct),
                           Inference.model_name == model_name, Inference.source == "mined")
                )  # fmt: skip
                if found is not None:
                    ids.append(found)
    return ids


def test_files_exist_and_the_default_pages_are_the_first_right_and_wrong_of_each_task(atlas, site):
    settings, store = atlas
    ids = first_ids(store, settings.model.name)
    assert len(ids) >= 4
    names = {p.name for p in site.iterdir()}
    expected = {"index.html", "site.css", "map.html", "heads.html", "plotly.min.js"}
    assert names == expected | {f"inference-{i}.html" for i in ids}
    index = (site / "index.html").read_text()
    linked = [int(i) for i in re.findall(r'<a href="inference-(\d+)\.html">', index)]
    assert linked == ids
    for page in names - {"site.css", "plotly.min.js"}:
        text = (site / page).read_text()
        assert settings.model.name in text and "exported 20" in text and "no search, no ablation" in text


def dd(page: str, ident: str) -> str:
    found = re.search(rf'<dd id="{ident}">([^<]*)</dd>', page)
    assert found, ident
    return found.group(1)


def test_counts_and_task_accuracies_are_the_databases(atlas, site):
    settings, store = atlas
    index = (site / "index.html").read_text()
    with store.session() as s:
        mined = Inference.source == "mined"
        inferences = s.scalar(select(func.count()).select_from(Inference).where(mined))
        right = s.scalar(
            select(func.count()).select_from(Inference).where(mined, Inference.first_token_correct)
        )
        patterns = s.scalar(select(func.count()).select_from(HeadPattern))
        scenarios = s.scalar(select(func.count()).select_from(Scenario))
        per_task = s.execute(
            select(Scenario.task, func.count(), func.count().filter(Inference.first_token_correct.is_(True)))
            .join(Inference, Inference.scenario_id == Scenario.id)
            .where(mined, Inference.model_name == settings.model.name)
            .group_by(Scenario.task)
        ).all()
    assert dd(index, "count-inferences") == f"{inferences:,}"
    assert dd(index, "count-right") == f"{right:,} ({pct(right / inferences)})"
    assert dd(index, "count-patterns") == f"{patterns:,}"
    assert dd(index, "count-scenarios") == f"{scenarios:,}"
    rows = dict(
        re.findall(r'<tr data-task="([^"]+)"><td title=.*?</td>(.*?)</tr>', index.split('id="task-table"')[1])
    )
    assert sorted(rows) == sorted(task for task, _n, _k in per_task)
    for task, n, k in per_task:
        low, high = wilson(k, n)
        cells = re.findall(r'<td class="num [^"]+">(.*?)</td>', rows[task])
        assert cells[0] == f"{n:,}" and cells[1] == f"{k:,}"
        assert cells[2] == f'{pct(k / n)} <span class="muted">[{pct(low)}, {pct(high)}]</span>'


def test_predictors_table_and_the_heads_that_matter(site):
    index = (site / "index.html").read_text()
    predictors = index.split('id="predictors"')[1].split("</section>")[0]
    assert "clusters_catboost: CV accuracy [95% CI]" in predictors
    identifiers = predictors.split('<tr data-task="identifiers">')[1].split("</tr>")[0]
    assert '<td class="num">50.0%</td>' in identifiers  # chance
    assert 'class="above-chance"' in identifiers and "80.0% [70.0%, 88.0%]" in identifiers
    assert "55.0% [40.0%, 70.0%]" in identifiers  # its interval contains chance: not bold
    assert identifiers.count("above-chance") == 1
    heads = index.split('id="important-heads"')[1].split("</section>")[0]
    # identifiers: the most accurate head-ranking predictor (catboost, 80%), its top 5 by mean |SHAP|.
    row = heads.split("<td>identifiers</td>")[1].split("</tr>")[0]
    assert re.findall(r"<span title=\"mean \|SHAP\|[^\"]*\">(L\dH\d)</span>", row) == [
        "L0H0", "L1H2", "L2H1", "L3H3", "L0H3"
    ]  # fmt: skip
    assert "<td>random</td>" not in heads  # its predictor ranks no heads


def test_inference_pages_hold_their_code_and_hole(atlas, site):
    settings, store = atlas
    with store.session() as s:
        rows = s.execute(
            select(Inference.id, Inference.completion_text, Scenario.target_text, Scenario.hole_start,
                   Scenario.hole_end, CorpusFile.path, Inference.first_token_correct)
            .join(Scenario, Scenario.id == Inference.scenario_id)
            .join(CorpusFile, CorpusFile.id == Scenario.corpus_file_id)
            .where(Inference.id.in_(first_ids(store, settings.model.name)))
        ).all()  # fmt: skip
    checked = 0
    for inference_id, completion, target, start, end, path, correct in rows:
        page = (site / f"inference-{inference_id}.html").read_text()
        visible = lambda t: html.escape(t.replace("\t", "→").replace(" ", "·").replace("\n", "↵\n")) or "∅"  # noqa: E731
        assert f'<span class="expected">{visible(target)}</span>' in page
        assert f'<span class="completion">{visible(completion)}</span>' in page
        outcome = '<span class="right">right' if correct else '<span class="wrong">wrong'
        assert f"first token {outcome}" in page
        assert page.count("<img alt=") == 16  # the tiny model: 4 layers x 4 heads
        if path == EVIL_PATH:
            continue
        # The code around the hole as the corpus file has it (the hole's offsets are token-aligned bytes).
        source = (JAVA_FIXTURES / path).read_bytes()
        assert html.escape(source[:start].decode()[-60:]) + '<span class="hole"' in page
        assert "</span></span>" + html.escape(source[end:].decode()[:60]) in page
        checked += 1
    assert checked >= 3


def test_strings_from_the_corpus_are_shown_as_text(atlas, site):
    _settings, store = atlas
    with store.session() as s:
        evil = s.scalar(select(Inference.id).where(Inference.completion_text == EVIL_COMPLETION))
    pages = [(site / "index.html").read_text(), (site / f"inference-{evil}.html").read_text()]
    for page in pages:
        assert "<script>alert" not in page and "</pre><script>" not in page
        assert html.escape(EVIL_COMPLETION) in page
    assert html.escape(EVIL_PATH) in pages[1]


def test_the_map_is_a_sample_of_the_newest_map_drawn_by_the_local_plotly(atlas, site):
    import plotly

    _settings, store = atlas
    with store.session() as s:
        newest = s.scalar(select(func.max(PatternMap.id)))
        total = s.scalar(select(func.count()).select_from(MapPoint).where(MapPoint.pattern_map_id == newest))
    page = (site / "map.html").read_text()
    shown = re.search(r"<b>(\d+) of ([\d,]+) points shown</b>", page)
    assert shown and int(shown.group(2).replace(",", "")) == total and 0 < int(shown.group(1)) <= MAX_POINTS
    assert '<script src="plotly.min.js"></script>' in page and "Plotly.newPlot" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert (site / "plotly.min.js").read_bytes() == bundled.read_bytes()


def test_heads_page_shows_each_heads_median_statistics(atlas, site):
    _settings, store = atlas
    page = (site / "heads.html").read_text()
    with store.session() as s:
        rows = s.execute(
            select(HeadPattern.layer, HeadPattern.head, HeadPattern.entropy, HeadPattern.local_mass)
        ).all()
    assert page.count("<tr data-head=") == 16
    for layer, head in [(0, 0), (2, 3)]:
        mine = np.array([(r.entropy, r.local_mass) for r in rows if (r.layer, r.head) == (layer, head)])
        row = page.split(f'<tr data-head="L{layer}H{head}">')[1].split("</tr>")[0]
        cells = re.findall(r'<td class="num"[^>]*>([^<]*)</td>', row)
        assert cells[0] == str(len(mine))
        assert cells[1] == f"{np.median(mine[:, 0]):.3f}" and cells[5] == f"{np.median(mine[:, 1]):.3f}"
        assert cells[6].endswith("noise)")  # clusters of the newest clustering


def test_an_atlas_without_map_or_predictors_says_why(tiny_atlas, tmp_path):
    settings, store, _report = tiny_atlas  # read only
    out = tmp_path / "plain"
    report = export_site(
        settings, store, SiteRequest(out_dir=out, model_name=settings.model.name, heads=False)
    )
    assert report.map_points is None and report.heads_left_out
    assert "no map yet: run `attnlens atlas map" in (out / "map.html").read_text()
    assert not (out / "plotly.min.js").exists() and not (out / "heads.html").exists()
    index = (out / "index.html").read_text()
    assert "None trained yet for this model: run <code>attnlens predictors train</code>" in index
    assert "no clustering yet: run <code>attnlens atlas cluster</code>" in index


def test_refuses_a_non_empty_folder_and_an_unknown_inference(atlas, tmp_path):
    settings, store = atlas
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty.*--force"):
        export_site(settings, store, SiteRequest(out_dir=out, model_name=settings.model.name))
    with pytest.raises(NotFound, match="no inference with id 999999"):
        export_site(settings, store, SiteRequest(out_dir=tmp_path / "new", model_name=settings.model.name,
                                                 inference_ids=(999999,)))  # fmt: skip
    assert not (tmp_path / "new").exists()  # nothing written before every id is known
    chosen = first_ids(store, settings.model.name)[:1]
    request = SiteRequest(out_dir=out, model_name=settings.model.name, inference_ids=tuple(chosen),
                          force=True, heads=False)  # fmt: skip
    export_site(settings, store, request)
    assert (out / "notes.txt").read_text() == "mine" and (out / f"inference-{chosen[0]}.html").exists()


def test_the_command_writes_the_snapshot_and_says_where_index_is(atlas, tmp_path):
    settings, store = atlas
    chosen = first_ids(store, settings.model.name)[:2]
    out = tmp_path / "cli-site"
    args = ["--data-dir", str(settings.data_dir), "export-site", str(out), "--model", settings.model.name,
            "--inference", str(chosen[0]), "--inference", str(chosen[1]), "--max-points", "50"]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert f"open {(out / 'index.html').resolve()}" in done.output and "2 completion pages" in done.output
    assert sorted(p.name for p in out.glob("inference-*.html")) == sorted(
        f"inference-{i}.html" for i in chosen
    )
    again = CliRunner().invoke(app, args)
    assert isinstance(again.exception, InvalidInput)
