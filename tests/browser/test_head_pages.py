"""The heads scatter (#/heads) and the head page (#/head/L1H2) in Chromium, over the tiny atlas, whose
patterns carry the real head-type scores the build computes: one point per head, the axes kept in the URL, a
click on a point opens its head; the head page has one profile row per score, examples per score and decile
linking to their patterns, the attention over the code on demand, and an error box (not a blank page) for an
unknown head. States the tiny atlas does not reach (a score that never applied, a head some predictor ranks,
no scored inference) are served by rewriting the API's own answer in the browser."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view

pytestmark = pytest.mark.browser

HEAD = "L1H2"


def plot_data(page, expression: str) -> Any:
    return page.evaluate(
        f"() => {{ const gd = document.getElementById('heads-plot'); return {expression}; }}"
    )


def point_on_page(page, x: float, y: float) -> tuple[float, float]:
    """Where Plotly draws the data point (x, y) on the page (its own axis geometry)."""
    return page.evaluate(
        """([x, y]) => {
            const gd = document.getElementById('heads-plot'); const L = gd._fullLayout;
            const box = gd.getBoundingClientRect();
            return [box.left + L.xaxis._offset + L.xaxis.l2p(x), box.top + L.yaxis._offset + L.yaxis.l2p(y)];
        }""",
        [x, y],
    )


def rewrite(page, pattern: str | re.Pattern[str], change) -> None:
    """Serve `pattern`'s real answer changed by `change(json) -> json`."""

    def handle(route):
        response = route.fetch()
        route.fulfill(response=response, body=json.dumps(change(response.json())))

    page.route(pattern, handle)


def test_the_scatter_draws_every_head_keeps_its_axes_in_the_url_and_opens_a_head(page):
    overview = page.request.get("/api/heads").json()
    specs = page.request.get("/api/heads/scores").json()
    open_view(page, "#/heads")
    page.locator("#heads-plot .main-svg").first.wait_for()
    assert page.locator("[data-nav=heads].active").count() == 1
    n_heads = overview["n_layers"] * overview["n_heads"]
    assert plot_data(page, "gd.data.reduce((n, t) => n + t.x.length, 0)") == n_heads
    assert sorted(plot_data(page, "gd.data.flatMap((t) => t.customdata)")) == sorted(
        h["name"] for h in overview["heads"]
    )
    assert plot_data(page, "gd.data.every((t) => t.type === 'scattergl')")
    # Colour by label: one trace per first label (or "unlabelled"), named with its head count.
    groups: dict[str, int] = {}
    for head in overview["heads"]:
        first = head["labels"][0] if head["labels"] else "unlabelled"
        groups[first] = groups.get(first, 0) + 1
    assert sorted(plot_data(page, "gd.data.map((t) => t.name)")) == sorted(
        f"{k} ({v})" for k, v in groups.items()
    )
    # The hover text names the head, its labels and its medians.
    first = overview["heads"][0]
    hover = plot_data(
        page, f"gd.data.flatMap((t) => t.text).find((s) => s.includes('<b>{first['name']}</b>'))"
    )
    assert f"labels: {', '.join(first['labels']) or 'none'}" in hover
    assert all(spec["title"] in hover for spec in specs)
    assert (
        f"over {overview['n_inferences']} scored mined inferences"
        in page.locator("#heads-coverage").inner_text()
    )

    # Every score is an axis choice, by its title; picking one goes to the URL and the axis title.
    options = page.locator("#heads-x option").evaluate_all("os => os.map((o) => [o.value, o.textContent])")
    assert [value for value, _ in options] == ["layer", "head", "importance", *(s["name"] for s in specs)]
    chosen = specs[-1]
    page.select_option("#heads-x", chosen["name"])
    page.wait_for_function(f"location.hash.includes('x={chosen['name']}')")
    page.wait_for_function(
        "(t) => document.getElementById('heads-plot').layout.xaxis.title.text.startsWith(t)",
        arg=chosen["title"],
    )
    page.screenshot(path=str(SCREENSHOTS / "heads_scatter.png"), full_page=True)
    page.select_option("#heads-color", specs[0]["name"])
    page.wait_for_function(f"location.hash.includes('color={specs[0]['name']}')")
    assert plot_data(page, "gd.data.reduce((n, t) => n + t.x.length, 0)") == n_heads

    # Under the plot: one row per label (and one for the unlabelled), each naming its heads as links.
    rows = page.locator("#labelled-heads tbody tr")
    assert rows.count() == len(specs) + 1
    for spec in specs:
        carrying = {h["name"] for h in overview["heads"] if spec["label"] in h["labels"]}
        links = page.locator(f"#labelled-heads tr[data-label='{spec['label']}'] a")
        assert set(links.evaluate_all("as => as.map((a) => a.textContent)")) == carrying
        assert all(
            href.startswith("#/head/L")
            for href in links.evaluate_all("as => as.map((a) => a.getAttribute('href'))")
        )

    # A reload keeps the choices; with x = layer and y = head every head has its own place: click one.
    open_view(page, "#/heads?x=layer&y=head&color=layer")
    page.locator("#heads-plot .main-svg").first.wait_for()
    assert page.input_value("#heads-x") == "layer" and page.input_value("#heads-y") == "head"
    layer, head = (int(part) for part in HEAD[1:].split("H"))
    page.mouse.move(*point_on_page(page, layer, head))
    page.mouse.click(*point_on_page(page, layer, head))
    page.wait_for_function(f"location.hash === '#/head/{HEAD}'")
    page.wait_for_selector("#page[data-ready=true] #profile-table")
    assert page.locator("[data-nav=heads].active").count() == 1


def test_the_head_page_shows_the_profile_examples_and_the_attention_on_the_code(page):
    specs = page.request.get("/api/heads/scores").json()
    head = page.request.get(f"/api/heads/{HEAD}").json()
    open_view(page, f"#/head/{HEAD}")
    assert page.locator("h1").inner_text() == f"Head {HEAD}"
    assert head["caveat"] in page.locator("#head-caveat").inner_text()
    assert page.get_attribute("#previous-head", "href") == "#/head/L1H1"
    assert page.get_attribute("#next-head", "href") == "#/head/L1H3"
    assert page.get_attribute("#all-heads", "href") == "#/heads"

    # The labels, each with its evidence.
    labels = page.locator("#head-labels tbody tr")
    assert labels.count() == len(head["labels"])
    for label in head["labels"]:
        cells = page.locator(f"#head-labels tr[data-label='{label['label']}'] td").all_inner_texts()
        assert cells[2] == f"{label['median']:.3f}" and cells[3] == f"≥ {label['threshold']:g}"
        assert cells[4] == f"{label['typical']:.3f}"

    # Related heads of this model, as the API ranks them, each opening its head page.
    related = page.request.get(f"/api/heads/{HEAD}/related?k=8").json()
    page.locator("#related-heads li").first.wait_for()
    assert page.locator("#related-heads li").evaluate_all("ls => ls.map(l => l.dataset.head)") == [
        r["name"] for r in related
    ]
    # Its clusters, as the cluster panel of the gallery draws them: one row per cluster of the API.
    clusters = page.request.get(f"/api/heads/{HEAD}/clusters").json()
    page.locator("#head-clusters table").wait_for()
    assert page.locator("#head-clusters tbody tr").evaluate_all(
        "rs => rs.map(r => Number(r.dataset.label))"
    ) == [c["label"] for c in clusters]

    # One profile row per score, in the scores' order, with its title, median and decile strip.
    rows = page.locator("#profile-table tbody tr")
    assert rows.evaluate_all("rs => rs.map((r) => r.dataset.score)") == [s["name"] for s in specs]
    by_name = {s["name"]: s for s in head["scores"]}
    for spec in specs:
        row = page.locator(f"#profile-table tr[data-score='{spec['name']}']")
        assert (
            spec["title"] in row.inner_text()
            and row.locator("td[title]").first.get_attribute("title") == spec["formula"]
        )
        assert row.locator("td.median").inner_text() == f"{by_name[spec['name']]['median']:.3f}"
        assert row.locator("svg.decile-strip line.decile").count() == 9

    # Examples: the first label's score at decile 10 by default; another score and decile from the selects.
    labelled = head["labels"][0]["score"] if head["labels"] else specs[0]["name"]
    assert page.input_value("#example-score") == labelled and page.input_value("#example-decile") == "10"
    chosen = next(s for s in specs if s["relational"] and by_name[s["name"]]["n_applicable"] > 1)
    page.select_option("#example-score", chosen["name"])
    page.select_option("#example-decile", "9")
    page.wait_for_function(
        f"location.hash.includes('score={chosen['name']}') && location.hash.includes('decile=9')"
    )
    page.wait_for_function("document.getElementById('examples-summary').textContent.startsWith('Decile 9')")
    expected = page.request.get(f"/api/heads/{HEAD}/examples?score={chosen['name']}&decile=9&limit=6").json()
    assert expected["examples"]
    cards = page.locator("#head-examples .head-example")
    assert cards.evaluate_all("cs => cs.map((c) => Number(c.dataset.pattern))") == [
        e["id"] for e in expected["examples"]
    ]
    assert page.locator("#head-examples a.pattern-link").evaluate_all(
        "as => as.map((a) => a.getAttribute('href'))"
    ) == [f"#/pattern/{e['id']}" for e in expected["examples"]]
    assert cards.first.locator("canvas.thumb").count() == 1
    shown = float(cards.first.locator(".example-value").inner_text().rsplit(": ", 1)[1])
    assert shown == pytest.approx(expected["examples"][0]["value"], rel=1e-3)
    assert page.locator("#head-examples button.show-overlay").count() == min(3, len(expected["examples"]))
    assert (
        "No predictors trained yet" in page.locator("#head-matters").inner_text()
    )  # the tiny atlas has none

    # The attention over the code: one pattern fetched (recomputed on the model) on the click.
    example = expected["examples"][0]
    pattern = page.request.get(f"/api/patterns/{example['id']}", timeout=60_000).json()
    cards.first.locator("button.show-overlay").click()
    page.wait_for_selector("#example-overlay #attention-overlay .tok")
    assert page.locator("#attention-overlay .tok").count() == len(pattern["tokens"])
    assert f"pattern #{example['id']}" in page.locator("#example-overlay h3").text_content()
    page.screenshot(path=str(SCREENSHOTS / "head_page.png"), full_page=True)

    # A reload keeps the score and decile; the pattern link opens the pattern in its inference's gallery.
    page.reload()
    page.wait_for_selector("#page[data-ready=true] #head-examples .head-example")
    assert page.input_value("#example-score") == chosen["name"] and page.input_value("#example-decile") == "9"
    page.locator("#head-examples a.pattern-link").first.click()
    page.wait_for_function(f"location.hash.startsWith('#/inference/{example['inference_id']}?head={HEAD}')")


def test_a_score_that_never_applied_says_so_and_a_ranking_head_names_its_tasks(page):
    specs = page.request.get("/api/heads/scores").json()
    absent = next(s["name"] for s in specs if s["relational"])

    def never_applied(body):
        for score in body["scores"]:
            if score["name"] == absent:
                score.update(n_applicable=0, median=None, deciles=None, labelled=False)
        body["labels"] = [label for label in body["labels"] if label["score"] != absent]
        return body

    def ranked(_body):
        common = {"kind": "logreg", "accuracy": 0.8, "accuracy_low": 0.7, "accuracy_high": 0.9, "chance": 0.5}
        heads = [
            {"name": name, "layer": 0, "head": 0, "mean_abs_shap": 0.02, "mean_shap": -0.01}
            for name in ("L0H0", HEAD)
        ]
        return [
            {"task": "identifiers", "predictor_id": 7, "above_chance": True, **common, "heads": heads},
            {"task": "random", "predictor_id": 8, "above_chance": False, **common, "heads": heads[:1]},
        ]

    rewrite(page, f"**/api/heads/{HEAD}", never_applied)
    rewrite(page, re.compile(r"/api/predictors/heads\?top=10$"), ranked)
    open_view(page, f"#/head/{HEAD}?score={absent}")
    row = page.locator(f"#profile-table tr[data-score='{absent}']")
    assert "does not apply to these inputs" in row.locator("td.not-applicable").inner_text()
    assert row.locator("svg").count() == 0
    # Its examples cannot be asked for: the choice is disabled, and the page fell back to another score.
    assert page.locator(f"#example-score option[value='{absent}']").is_disabled()
    assert page.input_value("#example-score") != absent
    rows = page.locator("#head-matters tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-task") == "identifiers"
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[1] == "2" and cells[2].startswith("0.0200")
    assert rows.first.locator("a").first.get_attribute("href") == f"#/predictor/7?head={HEAD}"


def test_no_scored_inference_says_how_to_compute_them(page):
    rewrite(page, "**/api/heads", lambda body: {**body, "n_inferences": 0, "heads": []})
    for view in ("#/heads", f"#/head/{HEAD}"):
        open_view(page, view)
        notice = page.locator("#no-head-scores").inner_text()
        assert (
            "No scored inferences yet" in notice
            and "attnlens heads backfill" in notice
            and "head_scores" in notice
        )


def test_an_unknown_head_shows_an_error_not_a_blank_page(page, problems):
    problems.expected_http_errors.append("/api/heads/L99H99")
    open_view(page, "#/head/L99H99")
    error = page.locator("#page .error")
    assert "L99H99" in error.inner_text()
    assert page.locator("#page a[href='#/heads']").count() == 1


def test_the_grid_and_the_pattern_page_link_to_the_head_page(page, problems):
    inference = page.request.get("/api/inferences?limit=1").json()["items"][0]
    open_view(page, f"#/inference/{inference['id']}?head={HEAD}")
    link = page.locator(".grid-wrap a.head-page-link")
    assert link.get_attribute("href") == f"#/head/{HEAD}" and "what this head does" in link.inner_text()
    # The pattern page names the head from its stored thumbnail; here its recomputation fails, so it stays.
    grid = page.request.get(f"/api/inferences/{inference['id']}/heads").json()
    pattern_id = next(c["id"] for c in grid["heads"] if c["name"] == HEAD)
    problems.expected_http_errors.append(f"/api/patterns/{pattern_id}")
    failure = {"ok": False, "status": 500, "code": "internal", "error": "no model", "errors": []}
    page.route(
        f"**/api/patterns/{pattern_id}",
        lambda route: route.fulfill(status=500, content_type="application/json", body=json.dumps(failure)),
    )
    open_view(page, f"#/pattern/{pattern_id}")
    page.wait_for_selector("#pattern-head a.head-page-link")
    assert page.get_attribute("#pattern-head a.head-page-link", "href") == f"#/head/{HEAD}"
    assert "no model" in page.locator("#page .error").inner_text()
