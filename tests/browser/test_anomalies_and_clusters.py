"""The anomaly signal and the richer cluster panel (issue 13) in Chromium, over the app served on 127.0.0.1
with the tiny atlas (whose build stores every pattern's AP-MAE reconstruction error, and to which the browser
fixtures add a clustering): the Unusual page, the inference page's unusual-heads card and its grid's
"colour by unusualness" frame, the cluster panel's labels, examples and correctness against the head's, and
the paste page's unusual share. Every number shown is checked against the API's answer."""

from __future__ import annotations

import math

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view, private_server, watched_page
from tests.browser.test_pages import CURSOR_AT_0, EVERY_TARGET, cell_point, run_paste

pytestmark = pytest.mark.browser


def ordinal(share: float) -> str:
    """What the pages write for a percentile: 0.9166 -> "92nd"."""
    n = js_round(100 * share)
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def js_round(x: float) -> int:
    """Number.prototype.toFixed(0) for x >= 0: a tie goes up (Python's format rounds it to even)."""
    return math.floor(x + 0.5)


def pct0(x: float) -> str:
    return f"{js_round(100 * x)}%"


def num(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def oldest_inference(page) -> dict:
    """The atlas's first inference: a mined one, covered by the fixtures' clustering and the error
    distributions."""
    return min(page.request.get("/api/inferences?limit=200").json()["items"], key=lambda it: it["id"])


def chance_text(chance: float) -> str:
    """The page's "about N% expected by chance" (one decimal below 10%)."""
    return (
        f"about {100 * chance:.1f}% expected by chance"
        if chance < 0.1
        else f"about {100 * chance:.0f}% expected by chance"
    )


def test_the_unusual_page_lists_the_apis_most_unusual_patterns_in_order_and_its_links_work(page):
    api = page.request.get("/api/anomalies?limit=12").json()
    assert api["n_patterns"] > 0 and api["items"], "the tiny atlas's build stores reconstruction errors"
    open_view(page, "#/anomalies?limit=12")
    assert page.locator("a[data-nav=anomalies]").get_attribute("class") == "active"
    cards = page.locator("#anomaly-cards .anomaly-card")
    assert cards.evaluate_all("cs => cs.map(c => Number(c.dataset.pattern))") == [
        a["id"] for a in api["items"]
    ]
    assert page.locator("#anomaly-limit").input_value() == "12"
    facts = page.locator("#anomalies-facts").inner_text()
    assert f"{api['n_patterns']} atlas patterns with a reconstruction error" in facts
    assert f"the {len(api['items'])} most unusual for their head shown" in facts
    about = page.locator("#anomalies-about").inner_text()
    for words in ("reconstruction", "percentile within its head", "robust z", "Unusual is not wrong"):
        assert words in about

    for i, a in enumerate(api["items"][:4]):
        card = cards.nth(i)
        text = card.inner_text()
        assert f"{ordinal(a['percentile'])} percentile of {a['name']}'s atlas errors" in text
        assert f"robust z {num(a['robust_z'], 2)}" in text
        error = float(card.locator(".anomaly-error").get_attribute("title").split()[3].rstrip(";"))
        assert error == pytest.approx(a["error"])
        assert f"vs {a['name']}'s median" in text
        assert f"task {a['task'] or 'pasted'}" in text
        assert ("✓ correct" if a["first_token_correct"] else "✗ wrong") in text
        assert card.locator("a.head-link").get_attribute("href") == f"#/head/{a['name']}"
        assert card.locator("a.pattern-link").get_attribute("href") == f"#/pattern/{a['id']}"
        assert card.locator("a.anomaly-thumb").get_attribute("href") == f"#/pattern/{a['id']}"
        assert (
            card.locator("a.inference-link").get_attribute("href")
            == f"#/inference/{a['inference_id']}?head={a['name']}"
        )
        assert card.locator("canvas.thumb").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "anomalies.png"), full_page=True)

    # The limit is kept in the URL and asks the API for that many.
    page.select_option("#anomaly-limit", "48")
    page.wait_for_function("location.hash === '#/anomalies?limit=48'")
    page.wait_for_selector("#page[data-ready=true] #anomaly-cards")
    wider = page.request.get("/api/anomalies?limit=48").json()["items"]
    assert cards.evaluate_all("cs => cs.map(c => Number(c.dataset.pattern))") == [a["id"] for a in wider]

    first = api["items"][0]
    cards.first.locator("a.head-link").click()
    page.wait_for_function(f"location.hash === '#/head/{first['name']}'")
    page.wait_for_selector("#page[data-ready=true]")
    assert page.locator("h1").first.inner_text() == f"Head {first['name']}"
    page.go_back()
    page.wait_for_selector("#page[data-ready=true] #anomaly-cards")
    cards.first.locator("a.inference-link").click()
    page.wait_for_selector(f"#head-detail h2:text-is('{first['name']}')")
    assert f"#/inference/{first['inference_id']}" in page.url
    page.go_back()
    page.wait_for_selector("#page[data-ready=true] #anomaly-cards")
    cards.first.locator("a.anomaly-thumb").click()  # the pattern page resolves it to its inference
    page.wait_for_function(f"location.hash === '#/inference/{first['inference_id']}?head={first['name']}'")
    page.wait_for_selector(f"#head-detail h2:text-is('{first['name']}')")


def test_the_inference_page_lists_its_unusual_heads_and_frames_the_grid_by_percentile(page):
    inference = oldest_inference(page)
    api = page.request.get(f"/api/inferences/{inference['id']}/anomalies?limit=5").json()
    grid = page.request.get(f"/api/inferences/{inference['id']}/heads").json()
    cells = {c["name"]: c for c in grid["heads"]}
    open_view(page, f"#/inference/{inference['id']}")

    # The card: the share of heads in their tail, counted from the grid's percentiles, and the top 5 heads.
    measured = [c for c in grid["heads"] if c["error_percentile"] is not None]
    in_tail = sum(c["error_percentile"] > api["tail"] for c in measured)
    assert api["unusual_share"] == pytest.approx(in_tail / len(measured))
    share = page.locator("#unusual-share").inner_text()
    assert share.startswith(
        f"{in_tail} of {len(measured)} heads ({pct0(api['unusual_share'])}) are in the tail"
    )
    # By chance: what the server computes for the atlas's patterns per head (8.3% with 12 a head here).
    assert f"above the head's {ordinal(api['tail'])} percentile; {chance_text(api['chance_share'])})" in share
    items = page.locator("#unusual-heads-list li")
    assert items.evaluate_all("ls => ls.map(l => l.dataset.head)") == [a["name"] for a in api["items"]]
    for i, a in enumerate(api["items"]):
        text = items.nth(i).inner_text()
        assert f"{ordinal(a['percentile'])} percentile of its atlas errors" in text
        assert f"robust z {num(a['robust_z'], 2)}" in text
        assert items.nth(i).locator("a").get_attribute("href") == f"#/head/{a['name']}"

    # The grid: off by default; on, every head's frame follows its percentile within the head.
    canvas = page.locator("canvas.grid-canvas")
    assert canvas.get_attribute("data-unusual") == "off"
    before = canvas.evaluate("c => c.toDataURL()")
    page.check("#unusual-toggle")
    page.wait_for_function("location.hash.includes('unusual=1')")
    assert canvas.get_attribute("data-unusual") == "on"
    drawn = {}
    for entry in canvas.get_attribute("data-unusualness").split(","):
        name, percentile, strength = entry.split("=")
        drawn[name] = (None if percentile == "-" else float(percentile), float(strength))
    assert set(drawn) == set(cells)
    for name, (percentile, strength) in drawn.items():
        expected = cells[name]["error_percentile"]
        assert percentile == (None if expected is None else pytest.approx(expected, abs=1e-4))
        assert strength == pytest.approx(
            0 if expected is None else min(1, max(0, (expected - 0.5) / 0.5)), abs=1e-3
        )
    assert any(s > 0 for _, s in drawn.values())
    assert canvas.evaluate("c => c.toDataURL()") != before
    assert page.locator(".legend .key-unusual").count() == 1
    page.mouse.move(0, 0)
    page.locator("canvas.grid-canvas").locator("xpath=ancestor::section[1]").screenshot(
        path=str(SCREENSHOTS / "inference_unusual.png")
    )

    # The tooltip names the percentile (its cluster line stays second).
    top = api["items"][0]
    page.mouse.move(*cell_point(page, top["layer"], top["head"]))
    tooltip = page.locator(".tooltip").inner_text()
    assert (
        f"unusualness: {ordinal(cells[top['name']]['error_percentile'])} percentile"
        " of this head's atlas errors" in tooltip
    )
    assert tooltip.splitlines()[1].startswith("cluster")

    # Unticked: nothing framed, the drawing as before. Reloaded with unusual=1: on again.
    page.uncheck("#unusual-toggle")
    assert canvas.get_attribute("data-unusual") == "off"
    page.mouse.move(0, 0)
    assert canvas.evaluate("c => c.toDataURL()") == before
    open_view(page, f"#/inference/{inference['id']}?unusual=1")
    assert page.locator("#unusual-toggle").is_checked()
    assert page.locator("canvas.grid-canvas").get_attribute("data-unusual") == "on"

    # "show" picks the head in the grid.
    page.locator("#unusual-heads-list li").first.get_by_role("button", name="show").click()
    page.wait_for_function(f"location.hash.includes('head={top['name']}')")
    page.wait_for_selector(f"#head-detail h2:text-is('{top['name']}')")


def rate(r: float, low: float, high: float) -> str:
    return f"{pct0(r)} [{js_round(100 * low)}–{pct0(high)}]"


def test_the_cluster_panel_shows_the_patterns_cluster_labels_examples_and_rates_vs_the_head(page):
    inference = oldest_inference(page)
    grid = page.request.get(f"/api/inferences/{inference['id']}/heads").json()
    cell = next(c for c in grid["heads"] if c["name"] == "L1H2")
    clusters = page.request.get("/api/heads/L1H2/clusters").json()
    specs = {s["name"]: s for s in page.request.get("/api/heads/scores").json()}
    assert cell["cluster"] in [c["label"] for c in clusters]
    open_view(page, f"#/inference/{inference['id']}?head=L1H2")
    page.wait_for_selector("#cluster-slot table.clusters tbody tr")
    assert (
        f"This pattern is in cluster {cell['cluster']} of L1H2"
        in page.locator("#cluster-membership").inner_text()
    )
    rows = page.locator("#cluster-slot table.clusters tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => Number(r.dataset.label))") == [c["label"] for c in clusters]
    assert page.locator("#cluster-slot tr.mine").get_attribute("data-label") == str(cell["cluster"])
    assert page.locator("#cluster-slot tr.mine .badge.this-pattern").count() == 1

    for i, c in enumerate(clusters):
        row = rows.nth(i)
        labels = row.locator(".cluster-label")
        assert labels.evaluate_all("ls => ls.map(l => l.dataset.label)") == [x["label"] for x in c["labels"]]
        for j, label in enumerate(c["labels"]):
            shown = " ".join(labels.nth(j).inner_text().split())
            evidence = (
                f"median {num(label['median'], 3)} ≥ {label['threshold']:g} · {label['n_applicable']} members"
            )
            assert shown == f"{label['label']} {evidence}"
            assert labels.nth(j).get_attribute("title").startswith(f"{specs[label['score']]['title']}: ")
        examples = row.locator("a.cluster-example")
        assert examples.evaluate_all("as => as.map(a => a.getAttribute('href'))") == [
            f"#/pattern/{e['id']}" for e in c["examples"]
        ]
        assert examples.locator("canvas.thumb").count() == len(c["examples"]) == 3
        assert c["examples"][0]["id"] == c["medoid_pattern_id"]
        correct = row.locator(".cluster-correct")
        if c["known"]:
            own = rate(c["correct_rate"], c["correct_low"], c["correct_high"])
            expected = f"{own} right ({c['correct']} of {c['known']})"
        else:
            expected = "no ground truth"
        assert correct.locator(".cluster-rate").inner_text() == expected
        head = rate(c["head_correct_rate"], c["head_correct_low"], c["head_correct_high"])
        assert correct.locator(".head-rate").inner_text() == f"vs {head} for the head"
    # The panel alone: from its "Cluster" heading to its notes, across the detail column.
    page.locator("#cluster-slot").scroll_into_view_if_needed()
    detail = page.locator("#head-detail").bounding_box()
    top = page.locator("#head-detail h3", has_text="Cluster").bounding_box()
    bottom = page.locator("#cluster-slot .cluster-notes").bounding_box()
    clip = {
        "x": detail["x"],
        "y": top["y"] - 8,
        "width": detail["width"],
        "height": bottom["y"] + bottom["height"] - top["y"] + 16,
    }
    page.screenshot(path=str(SCREENSHOTS / "cluster_panel.png"), clip=clip)

    # An example opens its pattern (in its inference's gallery).
    example = clusters[0]["examples"][1]
    rows.first.locator("a.cluster-example").nth(1).click()
    page.wait_for_function(f"location.hash === '#/inference/{example['inference_id']}?head=L1H2'")
    page.wait_for_selector("#head-detail h2:text-is('L1H2')")


def test_the_paste_page_shows_the_unusual_share_of_its_heads(page):
    open_view(page, "#/paste")
    page.fill("#code", EVERY_TARGET)
    page.uncheck("#store-paste")  # nothing written to the shared atlas
    page.evaluate(CURSOR_AT_0)
    page.select_option("#task", "identifiers")
    result = run_paste(page, "#analyze")
    share = result["unusual_share"]
    assert share is not None and result["unusual_tail"] == 0.99
    measured = [c for c in result["grid"]["heads"] if c["error_percentile"] is not None]
    in_tail = sum(c["error_percentile"] > result["unusual_tail"] for c in measured)
    assert share == pytest.approx(in_tail / len(measured))
    text = page.locator("#unusual-share").inner_text()
    assert text == (
        f"{in_tail} of {len(measured)} heads ({pct0(share)}) are in the tail of their atlas errors"
        " (above the head's own 99th percentile of AP-MAE reconstruction error; "
        f"{chance_text(result['unusual_chance'])})."
    )
    assert page.locator("#unusual-warning").count() == (1 if share > 0.1 else 0)
    # It stands by the prediction, after the notice that says why there is none.
    notices = page.locator("#analyze-result .notice").all_inner_texts()
    assert notices[0] == result["prediction_unavailable"]
    # The grid's unusualness frame is offered here too.
    page.check("#unusual-toggle")
    assert page.locator("#analyze-result canvas.grid-canvas").get_attribute("data-unusual") == "on"
    page.locator("#analyze-result .two-col > section").first.screenshot(
        path=str(SCREENSHOTS / "paste_unusual.png")
    )


def test_the_paste_warning_and_its_wording_for_a_share_far_above_chance(page):
    """The warning for an input unlike the atlas, rendered from an analyze answer written here (which share
    a real paste gets on the tiny atlas is not up to the test)."""
    open_view(page, "#/jobs")  # any page: the modules import without side effects
    texts = page.evaluate(
        """async () => {
        const { unusualView } = await import('/js/pages/paste.js');
        const heads = [0.2, 0.995, 1, 1, null].map((p, i) => ({ name: `L0H${i}`, error_percentile: p }));
        const show = (share) => {
          const div = document.createElement('div');
          div.append(...[unusualView({ unusual_share: share, unusual_tail: 0.99, grid: { heads } })].flat());
          const warning = div.querySelector('#unusual-warning');
          return [div.querySelector('#unusual-share').textContent, warning ? warning.textContent : null];
        };
        const shown = document.createElement('section');
        shown.className = 'panel';
        shown.append(...[unusualView({ unusual_share: 0.75, unusual_tail: 0.99, grid: { heads } })].flat());
        document.getElementById('page').replaceChildren(shown);
        return [show(0.75), show(null)];
    }"""
    )
    page.locator("#page > section").screenshot(path=str(SCREENSHOTS / "paste_unusual_warning.png"))
    (line, warning), (none, no_warning) = texts
    assert line.startswith("3 of 4 heads (75%) are in the tail of their atlas errors")
    assert warning.startswith("This input is unlike the atlas.") and "may not apply" in warning
    assert "atlas has no AP-MAE reconstruction errors yet" in none and no_warning is None


def test_pages_say_so_when_the_atlas_has_no_errors_yet(page, problems):
    """Before any reconstruction error (an atlas built before them, not backfilled yet), with the API's
    answers for that state written here: the Unusual page, the inference page's card, the grid's tooltip and
    the paste page say so, and how to compute them."""
    import json

    problems.expected_http_errors.append("/anomalies")  # the inference's anomalies: 404 on purpose
    empty = {"model": "tiny-starcoder2", "n_patterns": 0, "tail": 0.99, "unusual_share": None, "items": []}
    not_found = {
        "ok": False,
        "status": 404,
        "code": "not_found",
        "error": "no atlas patterns with a reconstruction error yet",
        "errors": [],
    }

    def without_errors(route):
        body = route.fetch().json()
        grid = body.get("grid", body)
        for cell in grid["heads"]:
            cell["reconstruction_error"] = cell["error_percentile"] = None
        if "unusual_share" in body:
            body["unusual_share"] = None
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(
        "**/api/anomalies?*",
        lambda r: r.fulfill(status=200, content_type="application/json", body=json.dumps(empty)),
    )
    page.route(
        "**/api/inferences/*/anomalies?*",
        lambda r: r.fulfill(status=404, content_type="application/json", body=json.dumps(not_found)),
    )
    page.route("**/api/inferences/*/heads", without_errors)
    page.route("**/api/analyze", without_errors)
    open_view(page, "#/anomalies")
    notice = page.locator("#no-anomalies").inner_text()
    assert (
        "No reconstruction errors yet" in notice
        and "attnlens heads backfill" in notice
        and "head_scores" in notice
    )
    assert page.locator("#anomaly-cards").count() == 0
    inference = oldest_inference(page)
    open_view(page, f"#/inference/{inference['id']}")
    assert "The atlas has no reconstruction errors yet" in page.locator("#unusual-share").inner_text()
    page.check("#unusual-toggle")
    assert set(page.locator("canvas.grid-canvas").get_attribute("data-unusualness").split(",")) == {
        f"L{layer}H{head}=-=0.000" for layer in range(4) for head in range(4)
    }
    page.mouse.move(*cell_point(page, 0, 0))
    assert "unusualness: no reconstruction error measured" in page.locator(".tooltip").inner_text()
    open_view(page, "#/paste")
    page.uncheck("#store-paste")
    page.evaluate(CURSOR_AT_0)
    result = run_paste(page, "#analyze")
    assert result["unusual_share"] is None
    assert "the atlas has no AP-MAE reconstruction errors yet" in page.locator("#unusual-share").inner_text()
    assert page.locator("#unusual-warning").count() == 0


def test_an_atlas_without_errors_says_so_on_every_page(chromium, browser_atlas, served_worker, tmp_path):
    """Before any reconstruction error (an atlas built before them, not backfilled yet): the Unusual page,
    the inference page's card and the paste page say so, and how to compute them, over the real API."""
    from sqlalchemy import update

    from attnlens.store.models import HeadPattern

    settings, _store = browser_atlas
    with private_server(settings, served_worker, tmp_path / "data", "no-errors") as (url, _mine, store):
        with store.session() as session:
            session.execute(update(HeadPattern).values(reconstruction_error=None))
        # The inference's anomalies answer 404 on purpose here (no errors to judge by).
        with watched_page(chromium, url, expected_http_errors=("/anomalies",)) as page:
            assert page.request.get("/api/anomalies").json()["n_patterns"] == 0
            open_view(page, "#/anomalies")
            notice = page.locator("#no-anomalies").inner_text()
            assert (
                "No reconstruction errors yet" in notice
                and "attnlens heads backfill" in notice
                and "head_scores" in notice
            )
            inference = oldest_inference(page)
            open_view(page, f"#/inference/{inference['id']}")
            assert "The atlas has no reconstruction errors yet" in page.locator("#unusual-share").inner_text()
            page.check("#unusual-toggle")
            assert "=0.000" in page.locator("canvas.grid-canvas").get_attribute("data-unusualness")
            page.mouse.move(*cell_point(page, 0, 0))
            assert "unusualness: no reconstruction error measured" in page.locator(".tooltip").inner_text()
            open_view(page, "#/paste")
            page.uncheck("#store-paste")
            page.evaluate(CURSOR_AT_0)
            result = run_paste(page, "#analyze")
            assert result["unusual_share"] is None
            assert (
                "the atlas has no AP-MAE reconstruction errors yet"
                in page.locator("#unusual-share").inner_text()
            )
