"""Every page's flow end to end in Chromium, over the app served on 127.0.0.1 with the tiny atlas."""

from __future__ import annotations

import re
from contextlib import ExitStack

import pytest

from attnlens.store.jobs import claim_job, enqueue_job, finish_job, get_job, report_progress, request_cancel
from tests.browser.conftest import SCREENSHOTS, open_view
from tests.conftest import JAVA_FIXTURES, JAVA_FIXTURES_CORPUS

pytestmark = pytest.mark.browser


def cell_point(page, layer: int, head: int) -> tuple[float, float]:
    """Page coordinates of the centre of a grid cell (the grid publishes its layout on the canvas)."""
    canvas = page.locator("canvas.grid-canvas").first
    box = canvas.bounding_box()
    cell, left, top = (float(canvas.get_attribute(f"data-{k}")) for k in ("cell", "left", "top"))
    return box["x"] + left + (head + 0.5) * cell, box["y"] + top + (layer + 0.5) * cell


def layer_label_point(page, layer: int) -> tuple[float, float]:
    canvas = page.locator("canvas.grid-canvas").first
    box = canvas.bounding_box()
    cell, left, top = (float(canvas.get_attribute(f"data-{k}")) for k in ("cell", "left", "top"))
    return box["x"] + left / 2, box["y"] + top + (layer + 0.5) * cell


def first_inference(page) -> dict:
    return page.request.get("/api/inferences?limit=1").json()["items"][0]


def test_overview_shows_counts_tasks_and_filters_completions(page, browser_atlas):
    open_view(page, "#/")
    health = page.request.get("/api/health").json()
    counts = page.locator(".card", has_text="Counts")
    assert counts.locator("dd").first.inner_text() == str(health["atlas"]["scenarios"])
    assert page.request.get("/api/predictors").json() == []  # the tiny atlas has none trained
    page.locator(".card", has_text="Correctness predictors").get_by_text("None trained yet").wait_for()
    page.wait_for_selector("#task-table tbody tr")
    tasks = page.locator("#task-table tbody tr td:first-child").all_inner_texts()
    # The task table counts the atlas (mined rows); pastes other tests stored are counted apart.
    listed = page.request.get("/api/inferences?limit=200&source=mined").json()["items"]
    assert tasks == sorted({item["task"] for item in listed})
    total = page.request.get("/api/inferences?limit=1").json()["total"]
    assert page.locator("#inference-list tbody tr").count() == min(total, 25)

    page.locator("select[name=task]").select_option("closing_bracket")
    page.wait_for_function("location.hash.includes('task=closing_bracket')")
    page.wait_for_function(
        "[...document.querySelectorAll('#inference-list tbody tr td:nth-child(2)')]"
        ".every(td => td.textContent === 'closing_bracket')"
    )
    expected = page.request.get("/api/inferences?task=closing_bracket&limit=50").json()["total"]
    assert page.locator("#inference-list tbody tr").count() == expected
    spans = page.locator("#inference-list tbody td.span-correct").all_inner_texts()
    listed = page.request.get("/api/inferences?task=closing_bracket&limit=50").json()["items"]
    assert len(spans) == len(listed) and all(s.strip() for s in spans)  # the whole-span verdict, per row

    # The text filter applies as you type: no Enter, no leaving the field.
    page.locator("select[name=task]").select_option("")
    texts = " ".join(f"{item['target_text']} {item['completion_text']}" for item in listed)
    found = re.search(r"[A-Za-z]{3}", texts)
    word = found.group(0) if found else "ret"
    page.locator("input[name=q]").press_sequentially(word, delay=30)
    page.wait_for_function(f"location.hash.includes('q={word}')")
    matching = page.request.get("/api/inferences", params={"q": word, "limit": 25}).json()["total"]
    rows = "document.querySelectorAll('#inference-list tbody tr').length"
    page.wait_for_function(f"{rows} === {min(matching, 25)}")


def test_overview_predictor_table_has_a_row_per_task_and_marks_intervals_above_chance(page, browser_atlas):
    """Predictor rows as the training job stores them (the tiny atlas is too small to train real ones;
    nothing here loads their model blob), removed again so the other pages see none."""
    from sqlalchemy import delete

    from attnlens.store.models import Predictor, PredictorEvaluation

    settings, store = browser_atlas
    rows = [  # task, kind, accuracy, low, high, chance
        ("identifiers", "clusters_catboost", 0.80, 0.70, 0.88, 0.50),
        ("identifiers", "embeddings_pca_logreg", 0.55, 0.40, 0.70, 0.50),
        ("noise", "embeddings_pca_logreg", 0.48, 0.33, 0.63, 0.50),
    ]
    ids = []
    with store.session() as session:
        for task, kind, accuracy, low, high, chance in rows:
            predictor = Predictor(name=f"{settings.model.name}/{task}/{kind}", kind=kind,
                                  model_name=settings.model.name, task=task, parameters={}, n_train=40,
                                  blob=b"not loaded by this page")  # fmt: skip
            session.add(predictor)
            session.flush()
            session.add(PredictorEvaluation(predictor_id=predictor.id, n_rows=40, folds=5,
                                            accuracy=accuracy, accuracy_low=low, accuracy_high=high,
                                            brier=0.2, calibration_error=0.1,
                                            details={"chance": chance}))  # fmt: skip
            ids.append(predictor.id)
    try:
        open_view(page, "#/")
        table = page.locator("#predictors table")
        table.wait_for()
        headers = table.locator("thead th").all_inner_texts()
        assert headers[:2] == ["task", "chance"]
        assert [h.split(":")[0] for h in headers[2:]] == ["clusters_catboost", "embeddings_pca_logreg"]
        body = table.locator("tbody tr")
        assert body.locator("td:first-child").all_inner_texts() == ["identifiers", "noise"]
        identifiers, noise = body.nth(0).locator("td"), body.nth(1).locator("td")
        assert identifiers.nth(1).inner_text() == "50.0%"
        assert identifiers.nth(2).inner_text().startswith("80.0% [70.0%, 88.0%]")
        assert identifiers.nth(2).get_attribute("class") == "above-chance"
        assert identifiers.nth(3).get_attribute("class") == ""  # 40% < 50%: the interval contains chance
        assert noise.nth(2).inner_text() == "–"  # no catboost predictor for noise
        assert noise.nth(3).get_attribute("class") == ""
    finally:
        with store.session() as session:
            session.execute(delete(PredictorEvaluation).where(PredictorEvaluation.predictor_id.in_(ids)))
            session.execute(delete(Predictor).where(Predictor.id.in_(ids)))
    assert page.request.get("/api/predictors").json() == []


def test_gallery_click_head_shows_pattern_cluster_and_clickable_neighbours(page):
    inference = first_inference(page)
    open_view(page, f"#/inference/{inference['id']}")
    shown = (inference["completion_text"] or "∅").replace(" ", "·").replace("\t", "→").replace("\n", "↵\n")
    assert page.locator("pre.code .hole .completion").inner_text() == shown
    assert page.locator("pre.code .hole .hole-sep").inner_text().strip() == "→"  # kept apart

    page.mouse.move(*cell_point(page, 0, 1))
    assert page.locator(".tooltip").inner_text().startswith("L0H1")

    page.mouse.click(*cell_point(page, 1, 2))
    page.wait_for_function("location.hash.includes('head=L1H2')")
    page.wait_for_selector("#pattern-plot .main-svg")
    page.wait_for_selector("#neighbours a.neighbour")
    assert page.locator("#head-detail h2").inner_text() == "L1H2"
    ticks = page.locator("#pattern-plot .xtick text").all_text_contents()
    assert ticks and ticks[0].startswith("0:")  # token labels on the axes
    assert page.locator("#cluster-slot table.clusters tbody tr").count() == 2

    # Keyboard: the focus starts on the selected head; Right then Enter picks its neighbour to the right.
    page.locator("canvas.grid-canvas").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_function("location.hash.includes('head=L1H3')")
    page.wait_for_selector("#head-detail h2:text-is('L1H3')")

    neighbour = page.locator("#neighbours a.neighbour").first
    page.wait_for_selector("#neighbours a.neighbour")
    target = neighbour.get_attribute("href")
    neighbour.click()
    page.wait_for_function(f"location.hash === {target!r}")
    page.wait_for_selector("#page[data-ready=true]")
    head = re.search(r"head=(L\d+H\d+)", target).group(1)
    assert page.locator("#head-detail h2").inner_text() == head
    page.wait_for_selector("#pattern-plot .main-svg")


def test_reload_restores_the_selected_head(page):
    inference = first_inference(page)
    open_view(page, f"#/inference/{inference['id']}?head=L3H0&scope=head")
    assert page.locator("#head-detail h2").inner_text() == "L3H0"
    hits = page.locator("#neighbours .nb-name").all_inner_texts()
    assert hits and all(h.startswith("L3H0") for h in hits)  # scope=head filters to the same head


def test_paste_java_cursor_with_task_and_automatic_holes(page):
    open_view(page, "#/paste")
    code = page.input_value("#code")
    cursor = code.index("count == 0")
    page.evaluate(
        "(c) => { const t = document.querySelector('#code'); t.focus(); t.setSelectionRange(c, c); }", cursor
    )
    page.select_option("#task", "identifiers")
    assert page.locator("#hole-info").inner_text().startswith(f"cursor at {cursor}")
    page.click("#analyze")
    page.wait_for_selector("#analyze-result dl")
    assert "identifiers" in page.locator("#analyze-result dd").first.inner_text()
    assert re.search(rf"cursor={cursor}&task=identifiers", page.url)

    page.click("#auto")
    page.wait_for_function("location.hash.includes('auto=identifiers')")
    page.wait_for_selector("#analyze-result dl")
    first = page.locator("#analyze-result dl").first.locator("a").first
    assert re.fullmatch(r"inference #\d+", first.inner_text())
    first.click()  # a pasted hole is stored: it opens in the gallery like any other
    page.wait_for_selector("#page[data-page=inference][data-ready=true]")


def test_paste_java_selection_gives_completion_prediction_and_grid(page, problems):
    open_view(page, "#/paste")
    # A character outside the BMP before the hole: offsets must be sent in code points, not UTF-16 units.
    code = (
        "// 🎉 counter\npublic class Counter {\n    private int count;\n    void inc() { count += 1; }\n}\n"
    )
    page.fill("#code", code)
    start = code.index("count +=")
    page.evaluate("([s, e]) => { const t = document.querySelector('#code');"
                  " t.focus(); t.setSelectionRange(s, e); }",
                  [len(code[:start].encode("utf-16-le")) // 2,
                   len(code[: start + 5].encode("utf-16-le")) // 2])  # fmt: skip
    page.click("#analyze")
    page.wait_for_selector("#analyze-result dl")
    result = page.locator("#analyze-result")
    assert "count" in result.locator("dd").nth(2).inner_text()  # the expected text is the selected span
    assert re.search(r"#/paste\?.*start=\d+", page.url)
    prediction = result.locator("#prediction, .notice").first
    text = prediction.inner_text()
    # The browser atlas has no trained predictor (tests/browser/test_real_prediction_page.py shows a real
    # one), so the page says why there is no probability and shows none. (This read `A and B or C`, which
    # passed on the notice whatever the page showed.)
    assert page.request.get("/api/predictors").json() == []
    assert prediction.get_attribute("class") == "notice" and "no correctness predictor" in text.lower()
    assert result.locator("#prediction").count() == 0
    assert result.locator("canvas.grid-canvas").is_visible()


def test_intervene_toggle_heads_and_layer_then_regenerate(page):
    inference = first_inference(page)
    open_view(page, f"#/intervene/{inference['id']}")
    page.mouse.click(*cell_point(page, 0, 0))
    page.mouse.click(*cell_point(page, 1, 1))
    page.mouse.click(*layer_label_point(page, 2))
    page.wait_for_function(
        "decodeURIComponent(location.hash).includes('heads=L0H0,L1H1,L2H0,L2H1,L2H2,L2H3')"
    )
    assert page.locator("#ablated-list").inner_text().startswith("6 ablated")
    page.mouse.click(*cell_point(page, 1, 1))  # toggles back
    assert page.locator("#ablated-list").inner_text().startswith("5 ablated")

    page.click("#regenerate")
    page.wait_for_selector("#ablation-result")
    text = page.locator("#ablation-result").inner_text()
    assert "KL at the hole" in text and "L2H3" in text and "L1H1" not in text
    assert page.locator("#ablation-diff").count() == 1

    page.get_by_role("button", name="Reset").click()
    assert page.locator("#ablated-list").inner_text().startswith("no heads ablated")
    assert page.locator("#ablation-result").count() == 0


def test_busy_model_shows_what_it_waits_for_then_retries(page, problems, served_worker):
    """While every model slot is taken and no request may queue, the API answers 503 + Retry-After: the page
    says so, counts down, and retries until it gets an answer."""
    problems.expected_http_errors.append("/ablations")
    inference = first_inference(page)
    open_view(page, f"#/intervene/{inference['id']}?heads=L0H0")
    gate = served_worker.gate
    queued, gate.max_queued = gate.max_queued, 0
    try:
        with ExitStack() as slots:
            for _ in range(served_worker.settings.api.max_concurrent_model_calls):
                slots.enter_context(gate.slot())
            page.click("#regenerate")
            page.wait_for_selector("#ablation-slot .loading:has-text('model busy, retrying in')")
            assert page.locator("#regenerate").is_disabled()
    finally:
        gate.max_queued = queued
    page.wait_for_selector("#ablation-result")
    assert "L0H0" in page.locator("#ablation-result").inner_text()


def test_experiment_progress_then_dose_curve(page, browser_atlas):
    _settings, store = browser_atlas
    inference = first_inference(page)
    open_view(page, f"#/intervene/{inference['id']}")
    page.fill("#experiment input[name=task]", "identifiers")
    page.fill("#experiment input[name=n]", "1,2,4")
    # The corpus is picked by name from GET /api/corpora; the job stores the location the name stands for.
    options = page.locator("#experiment select[name=corpus] option")
    assert {"", JAVA_FIXTURES_CORPUS} <= set(options.evaluate_all("os => os.map(o => o.value)"))
    page.select_option("#experiment select[name=corpus]", JAVA_FIXTURES_CORPUS)
    page.get_by_role("button", name="Launch").click()
    page.wait_for_selector("#experiment-job .job[data-state=queued]")
    job_id = int(page.locator("#experiment-job .job").get_attribute("data-job-id"))
    parameters = get_job(store, job_id).parameters
    assert parameters["task"] == "identifiers" and parameters["corpus"] == str(JAVA_FIXTURES)

    # This test plays the worker (the served worker runs no jobs): progress first, then a result.
    job = claim_job(store, "browser-test", kinds=["ablation_experiment"])
    assert job is not None and job.id == job_id
    report_progress(store, job_id, "browser-test", done=3, total=6, message="rule random")
    page.wait_for_selector("#experiment-job .job[data-done='3'] [role=progressbar][aria-valuenow='3']")
    rows = [
        {
            "rule": rule,
            "n": n,
            "accuracy": acc,
            "accuracy_low": acc - 0.1,
            "accuracy_high": acc + 0.1,
            "i2c": 1,
            "c2i": 2,
        }
        for rule, base in (("top_positive", 0.6), ("random", 0.7))
        for n, acc in ((1, base), (2, base - 0.1), (4, base - 0.2))
    ]
    report_progress(store, job_id, "browser-test", done=6, total=6, message="done")
    finish_job(store, job_id, "browser-test", {"rows": rows})
    page.wait_for_selector("#dose-curve .main-svg")
    assert page.locator("#dose-curve .legendtext").all_text_contents() == ["top positive SHAP", "random"]
    assert page.locator("#experiment-job .job").get_attribute("data-state") == "succeeded"


def test_map_hover_previews_and_click_opens_the_head(page):
    open_view(page, "#/map?color=task")
    page.wait_for_selector("#map-plot .main-svg")
    assert page.locator("#map-plot .legendtext").count() >= 2  # one entry per task
    page.select_option("#map-colour", "layer")
    page.wait_for_function("location.hash.includes('color=layer')")
    # Where the first point of the first trace is on screen, from Plotly's own axes.
    x, y, pattern_id = page.evaluate("""() => {
        const gd = document.getElementById('map-plot'); const t = gd.data[0]; const L = gd._fullLayout;
        const box = gd.getBoundingClientRect();
        return [box.left + L.margin.l + L.xaxis.l2p(t.x[0]), box.top + L.margin.t + L.yaxis.l2p(t.y[0]),
                t.customdata[0][4]];
    }""")
    model_calls: list[str] = []  # the full pattern is recomputed by the model: hovering must not ask for it
    page.on(
        "request",
        lambda r: r.url.rstrip("/").endswith(f"/api/patterns/{pattern_id}") and model_calls.append(r.url),
    )
    page.mouse.move(x, y)
    page.wait_for_selector("#map-thumbnail canvas.thumb")
    assert page.locator("#map-preview h2").text_content().endswith(f"pattern {pattern_id}")
    assert "stored" in page.locator("#map-thumbnail").inner_text() and model_calls == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "map_hover_thumbnail.png"))
    page.mouse.click(x, y)
    page.wait_for_function("location.hash.startsWith('#/inference/')")
    page.wait_for_selector("#pattern-plot .main-svg")
    assert page.locator("#head-detail .muted").first.text_content().startswith(f"pattern {pattern_id} ")


def test_jobs_progress_moves_and_cancel(page, browser_atlas):
    _settings, store = browser_atlas
    job_id = enqueue_job(store, "browser_test", {"note": "progress"}, total=10)
    assert claim_job(store, "browser-test", kinds=["browser_test"]).id == job_id
    report_progress(store, job_id, "browser-test", done=2, total=10, message="step 2")
    open_view(page, "#/jobs")
    block = page.locator(f".job[data-job-id='{job_id}']")
    assert block.get_attribute("data-done") == "2"
    report_progress(store, job_id, "browser-test", done=7, total=10, message="step 7")
    page.wait_for_selector(f".job[data-job-id='{job_id}'][data-done='7']")
    assert "step 7" in block.inner_text()
    asked: list[str] = []  # cancel asks first: dismissing keeps the job running, accepting cancels it
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    block.get_by_role("button", name="Cancel").click()
    page.wait_for_timeout(300)
    assert asked and f"Cancel job #{job_id}" in asked[0] and block.get_attribute("data-state") == "running"
    page.once("dialog", lambda d: d.accept())
    block.get_by_role("button", name="Cancel").click()
    page.wait_for_selector(f".job[data-job-id='{job_id}'] .badge:text-is('cancelling')")
    assert (
        report_progress(store, job_id, "browser-test", done=8, total=10) is True
    )  # the worker sees the request


def test_errors_are_shown_plainly(page, problems):
    problems.expected_http_errors.append("/api/inferences/999999")
    open_view(page, "#/inference/999999")
    assert "999999" in page.locator(".error").inner_text()


def test_grid_stays_usable_at_40_by_48_heads(page):
    """StarCoder2-15B's 1,920 heads: one canvas, cells at least 6 px, fits the page width,
    hover names heads."""
    open_view(page, "#/jobs")
    page.evaluate("""async () => {
        const { HeadGrid } = await import('/js/grid.js');
        const L = 40, H = 48, S = 32, bytes = new Uint8Array(L * H * S * S);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
        let b = '';
        for (let i = 0; i < bytes.length; i += 8192) b += String.fromCharCode(...bytes.subarray(i, i + 8192));
        const heads = [];
        for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) heads.push({
            id: l * H + h + 1, name: `L${l}H${h}`, layer: l, head: h,
            entropy: 1, diagonal_mass: 0, previous_token_mass: 0, first_token_mass: 0, local_mass: 0 });
        const grid = new HeadGrid({ n_layers: L, n_heads: H, thumbnail_size: S, thumbnails: btoa(b), heads });
        document.getElementById('page').replaceChildren(grid.element);
        await new Promise(requestAnimationFrame);
    }""")
    canvas = page.locator("canvas.grid-canvas")
    page.wait_for_function("document.querySelector('canvas.grid-canvas').dataset.cell")
    assert int(canvas.get_attribute("data-cell")) >= 6
    assert canvas.bounding_box()["width"] <= 1440
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.mouse.move(*cell_point(page, 39, 47))
    assert page.locator(".tooltip").inner_text().startswith("L39H47")


# A class with a target of every syntactic task after offset 0: identifiers, boolean / numeric / string
# literals, boolean / mathematical / assignment operators, `;`, closing brackets, method calls and
# method declarations.
EVERY_TARGET = """public class Ledger {
    private String name = "cash";
    private boolean open = true;

    public int total(int a, int b) {
        int sum = a * 2 + b;
        sum += 1;
        if (open && sum != 0) {
            log(name);
        }
        int[] xs = new int[3];
        return xs[0] - sum;
    }

    void log(String s) {
        System.out.println(s);
    }
}
"""


CURSOR_AT_0 = "() => { const t = document.querySelector('#code'); t.focus(); t.setSelectionRange(0, 0); }"


def cluster_text(label) -> str:
    return "cluster: noise" if label == -1 else f"cluster {label}"


def test_overview_counts_every_task_with_one_request(page):
    """The task table comes from GET /api/tasks (one request; it used to be two /api/inferences requests a
    task): a row per task with completions, in name order, with its description as the title."""
    requests = []
    page.on("request", lambda r: requests.append(r.url.split("/", 3)[3]))
    open_view(page, "#/")
    page.wait_for_selector("#task-table tbody tr")
    page.wait_for_selector("#inference-list")
    assert sum(u.startswith("api/tasks") for u in requests) == 1
    counting = [u for u in requests if u.startswith("api/inferences")]
    assert len(counting) == 1 and "task=" not in counting[0], counting  # only the completions list
    tasks = [t for t in page.request.get("/api/tasks").json() if t["inferences"] > 0]
    rows = page.locator("#task-table tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => [...r.cells].slice(0, 3).map(c => c.textContent))") == [
        [
            t["name"],
            str(t["inferences"]),
            f"{100 * t['first_token_correct'] / t['inferences']:.1f}% "
            f"[{100 * t['first_token_accuracy_low']:.1f}%, {100 * t['first_token_accuracy_high']:.1f}%]",
        ]
        for t in sorted(tasks, key=lambda t: t["name"])
    ]
    first = min(tasks, key=lambda t: t["name"])
    assert rows.first.locator("td").first.get_attribute("title") == first["description"]


def test_gallery_hover_and_neighbours_show_clusters(page):
    """The browser atlas has a clustering of every head: the grid's hover names the head's cluster
    (HeadCell.cluster) and each nearest pattern names its own (NeighborHit.cluster). The oldest inference
    is one of the atlas's own (pasted ones, newer, are in no clustering)."""
    inference = min(page.request.get("/api/inferences?limit=200").json()["items"], key=lambda it: it["id"])
    grid = page.request.get(f"/api/inferences/{inference['id']}/heads").json()
    cells = {c["name"]: c for c in grid["heads"]}
    assert all(c["cluster"] is not None for c in cells.values())
    open_view(page, f"#/inference/{inference['id']}?head=L2H1")
    for layer, head in ((0, 1), (2, 3), (3, 0)):
        page.mouse.move(*cell_point(page, layer, head))
        tooltip = page.locator(".tooltip").inner_text()
        name = f"L{layer}H{head}"
        assert tooltip.startswith(name)
        assert tooltip.splitlines()[1] == cluster_text(cells[name]["cluster"])
        assert "null" not in tooltip and "undefined" not in tooltip

    page.wait_for_selector("#neighbours a.neighbour")
    hits = page.request.get(f"/api/patterns/{cells['L2H1']['id']}/neighbors?k=12").json()["hits"]
    assert hits and all(hit["cluster"] is not None for hit in hits)
    shown = page.locator("#neighbours a.neighbour .nb-cluster").all_inner_texts()
    assert shown == [cluster_text(hit["cluster"]) for hit in hits]
    title = page.locator("#neighbours a.neighbour").first.get_attribute("title")
    assert cluster_text(hits[0]["cluster"]) in title


def run_paste(page, button: str) -> dict:
    """Click one of the paste page's run buttons; the /api/analyze answer, once the page has shown it."""
    with page.expect_response(lambda r: r.url.endswith("/api/analyze")) as answer:
        page.click(button)
    page.wait_for_selector("#analyze-result dl, #analyze-status .error")
    assert page.locator("#analyze-status .error").count() == 0, page.locator("#analyze-status").inner_text()
    assert answer.value.ok
    return answer.value.json()


def test_paste_task_pickers_offer_exactly_what_each_mode_accepts_and_each_works(page):
    """Each picker offers the tasks of /api/tasks usable in its mode (in that order, with their
    descriptions), and the server answers every one of them on code that has a target of each."""
    tasks = page.request.get("/api/tasks").json()
    modes = (("#task", "at_cursor", "#analyze"), ("#auto-task", "auto_holes", "#auto"))
    open_view(page, "#/paste")
    page.fill("#code", EVERY_TARGET)
    for picker, flag, _button in modes:
        offered = page.locator(f"{picker} option").evaluate_all("os => os.map(o => [o.value, o.title])")
        assert offered == [[t["name"], t["description"]] for t in tasks if t[flag]]
        assert "random" not in [name for name, _ in offered] and "noise" not in [name for name, _ in offered]

    for picker, flag, button in modes:
        for name, _ in page.locator(f"{picker} option").evaluate_all("os => os.map(o => [o.value, o.title])"):
            page.evaluate(CURSOR_AT_0)
            page.select_option(picker, name)
            result = run_paste(page, button)
            assert result["task"] == name
            assert page.locator("#analyze-result dl dd").first.inner_text() == name
            where = f"cursor=0&task={name}" if flag == "at_cursor" else f"auto={name}"
            assert where in page.url


def test_paste_without_a_predictor_says_why_and_lists_no_top_heads(page):
    """The tiny atlas has no trained predictor (and a real one needs 2 x cv_folds right and wrong
    completions per task, which its 3 scenarios a task cannot give): the page says why there is no
    prediction, lists and outlines no top heads, and its hover shows each head's cluster only when the
    server placed the pasted pattern in one."""
    assert page.request.get("/api/predictors").json() == []
    open_view(page, "#/paste")
    page.fill("#code", EVERY_TARGET)
    page.evaluate(CURSOR_AT_0)
    page.select_option("#task", "identifiers")
    result = run_paste(page, "#analyze")
    assert result["prediction"] is None and result["top_heads"] == []
    notice = page.locator("#analyze-result .notice").first.inner_text()
    assert notice == result["prediction_unavailable"] and "predictors train" in notice
    assert page.locator("#prediction").count() == 0
    assert page.locator("#top-heads").count() == 0
    assert page.locator("#analyze-result canvas.grid-canvas").get_attribute("data-top-heads") == ""

    cells = {c["name"]: c for c in result["grid"]["heads"]}
    page.mouse.move(*cell_point(page, 1, 2))
    tooltip = page.locator(".tooltip").inner_text()
    assert tooltip.startswith("L1H2") and "null" not in tooltip and "undefined" not in tooltip
    if cells["L1H2"]["cluster"] is not None:
        assert cluster_text(cells["L1H2"]["cluster"]) in tooltip.splitlines()


def test_top_heads_list_and_outline_render_what_the_analyze_answer_holds(page):
    """The top-heads list and the grid outline, rendered from an analyze answer's `top_heads` as written
    here (no predictor is trained: the tiny atlas cannot give one); what the list and the outline show is
    checked against it, including a noise cluster and a head in no cluster."""
    open_view(page, "#/jobs")  # any page: the modules import without side effects
    top_heads = [
        {"name": "L3H1", "importance": 0.4213, "cluster": 2},
        {"name": "L0H2", "importance": -0.1, "cluster": -1},
        {"name": "L2H0", "importance": 0.05, "cluster": None},
    ]
    page.evaluate(
        """async (top) => {
        const { topHeadsList } = await import('/js/pages/paste.js');
        const { HeadGrid } = await import('/js/grid.js');
        const L = 4, H = 4, S = 8;
        const heads = [];
        for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) heads.push({ id: l * H + h + 1,
            name: `L${l}H${h}`, layer: l, head: h, entropy: 1, diagonal_mass: 0, previous_token_mass: 0,
            first_token_mass: 0, local_mass: 0, cluster: l === 3 && h === 1 ? 2 : null });
        const thumbnails = btoa('\\0'.repeat(L * H * S * S));
        const grid = new HeadGrid({ n_layers: L, n_heads: H, thumbnail_size: S, thumbnails, heads });
        grid.setTop(top.map((t) => t.name));
        document.getElementById('page').replaceChildren(topHeadsList(top, 77), grid.element);
        await new Promise(requestAnimationFrame);
    }""",
        top_heads,
    )
    items = page.locator("#top-heads li")
    assert items.all_inner_texts() == [
        "L3H1 +0.421 · cluster 2", "L0H2 −0.100 · cluster: noise", "L2H0 +0.050 · no cluster",
    ]  # fmt: skip
    assert items.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))") == [
        "#/inference/77?head=L3H1", "#/inference/77?head=L0H2", "#/inference/77?head=L2H0",
    ]  # fmt: skip
    assert page.locator("canvas.grid-canvas").get_attribute("data-top-heads") == "L3H1,L0H2,L2H0"
    page.mouse.move(*cell_point(page, 3, 1))
    assert page.locator(".tooltip").inner_text().splitlines()[:2] == ["L3H1", "cluster 2"]


def test_experiment_points_show_and_export_the_heads_they_ablated(page, browser_atlas):
    """Every point of the dose curve names its heads, in the hover box and in the table under the plot,
    and the CSV and JSON exports hold each row with its heads."""
    import csv
    import io
    import json

    _settings, store = browser_atlas
    # This test plays the worker; experiments queued before it (in the atlas this copy came from) go first.
    while (stale := claim_job(store, "browser-test", kinds=["ablation_experiment"])) is not None:
        finish_job(store, stale.id, "browser-test", {"rows": []})
    open_view(page, f"#/intervene/{first_inference(page)['id']}")
    page.fill("#experiment input[name=task]", "identifiers")
    page.fill("#experiment input[name=n]", "1,2,4")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_selector("#experiment-job .job[data-state=queued]")
    job_id = int(page.locator("#experiment-job .job").get_attribute("data-job-id"))
    job = claim_job(store, "browser-test", kinds=["ablation_experiment"])
    assert job is not None and job.id == job_id
    chosen = {  # top_positive's pool held only 3 heads: its n = 4 point ablated 3
        "top_positive": ["L3H2", "L0H1", "L2H0"],
        "random": ["L1H1", "L2H3", "L0H0", "L3H3"],
    }
    rows = [
        {"rule": rule, "n": n, "n_heads": min(n, len(heads)), "heads": heads[:n], "accuracy": acc,
         "accuracy_low": acc - 0.1, "accuracy_high": acc + 0.1, "change": acc - 0.7,
         "change_low": acc - 0.8, "change_high": acc - 0.6,
         "i2c": 1, "i2c_low": 0, "i2c_high": 2, "c2i": 2, "c2i_low": 1, "c2i_high": 3}
        for rule, heads in chosen.items()
        for n, acc in ((1, 0.6), (2, 0.5), (4, 0.4))
    ]  # fmt: skip
    result = {
        "task": "identifiers",
        "scenarios": 10,
        "baseline_accuracy": 0.7,
        "model_heads": 16,
        "rows": rows,
    }
    finish_job(store, job_id, "browser-test", result)
    page.wait_for_selector("#dose-curve .main-svg")

    table = page.locator("#dose-table tbody tr")
    table.first.wait_for()
    assert table.count() == len(rows)
    for row in rows:
        shown = page.locator(f"#dose-table tr[data-rule={row['rule']}][data-n='{row['n']}']")
        assert shown.locator("td.heads").inner_text() == ", ".join(row["heads"])
        assert shown.locator("td").nth(2).inner_text() == str(len(row["heads"]))

    # Hover the top_positive n = 4 point (plotted at the 3 heads it ablated): the box names them.
    page.locator("#dose-curve").scroll_into_view_if_needed()
    x, y = page.evaluate("""() => {
        const gd = document.getElementById('dose-curve'); const L = gd._fullLayout;
        const t = gd.data.findIndex((d) => d.name === 'top positive SHAP'); const i = gd.data[t].x.length - 1;
        const box = gd.getBoundingClientRect();
        return [box.left + L.margin.l + L.xaxis.l2p(L.xaxis.d2l(gd.data[t].x[i])),
                box.top + L.margin.t + L.yaxis.l2p(gd.data[t].y[i])];
    }""")
    page.mouse.move(x, y)
    hover = page.locator("#dose-curve .hovertext").first
    hover.wait_for()
    assert "L3H2, L0H1, L2H0" in hover.text_content() and "asked for 4" in hover.text_content()

    with page.expect_download() as csv_download:
        page.click("#export-csv")
    assert csv_download.value.suggested_filename == f"experiment-{job_id}.csv"
    exported = list(csv.DictReader(io.StringIO(open(csv_download.value.path()).read())))
    assert [(r["rule"], int(r["n"]), r["heads"].split()) for r in exported] == [
        (r["rule"], r["n"], r["heads"]) for r in rows
    ]
    assert {r["job"] for r in exported} == {str(job_id)} and exported[2]["n_heads"] == "3"

    with page.expect_download() as json_download:
        page.click("#export-json")
    exported = json.loads(open(json_download.value.path()).read())
    assert exported["job"] == job_id and exported["parameters"]["n"] == [1, 2, 4]
    assert [r["heads"] for r in exported["result"]["rows"]] == [r["heads"] for r in rows]


def test_overview_and_header_say_what_the_model_weights_are(page):
    """The Model card and the header's worker status name the weights (`ModelInfo.weights`)."""
    open_view(page, "#/")
    weights = page.request.get("/api/health").json()["worker"]["model"]["weights"]
    assert weights == "random weights (seed 1234), untrained"
    assert page.locator("#model-weights").inner_text() == weights
    page.wait_for_function("document.getElementById('worker-status').textContent.includes('untrained')")
    assert page.locator("#worker-status").inner_text().startswith(f"tiny-starcoder2 ({weights}) · ready")


def test_paste_store_checkbox_delete_and_pasted_marks(page):
    """The "store this paste" box is on by default; unticked, the analysis writes nothing (no inference,
    the grid still shows); ticked, the result can be deleted from the paste page. The inference page
    marks a pasted row and deletes it (a mined one has no delete button), and the overview list marks
    pasted rows."""
    page.on("dialog", lambda dialog: dialog.accept())  # the delete buttons ask first
    total = lambda: page.request.get("/api/inferences?limit=1").json()["total"]  # noqa: E731
    before = total()
    open_view(page, "#/paste")
    assert page.is_checked("#store-paste")
    page.fill("#code", EVERY_TARGET + "// pasted once, by this test\n")  # not pasted by other tests
    page.evaluate(CURSOR_AT_0)
    page.select_option("#task", "identifiers")
    page.uncheck("#store-paste")
    page.wait_for_function("location.hash.includes('store=0')")
    result = run_paste(page, "#analyze")
    assert result["inference_id"] is None and result["grid"]["inference_id"] is None
    assert page.locator("#not-stored").is_visible() and page.locator(".delete-paste").count() == 0
    assert page.locator("#analyze-result canvas.grid-canvas").is_visible()
    assert total() == before

    page.check("#store-paste")
    page.evaluate(CURSOR_AT_0)
    stored = run_paste(page, "#analyze")["inference_id"]
    assert isinstance(stored, int) and total() == before + 1
    with page.expect_response(lambda r: r.request.method == "DELETE") as answer:
        page.click(".delete-paste")
    assert answer.value.ok
    page.locator("#paste-deleted").wait_for()
    assert page.request.get(f"/api/inferences/{stored}").status == 404 and total() == before

    page.evaluate(CURSOR_AT_0)
    kept = run_paste(page, "#analyze")["inference_id"]
    open_view(page, "#/")
    row = page.locator("#inference-list tbody tr", has=page.locator(f"a[href='#/inference/{kept}']"))
    assert row.locator(".source-pasted").inner_text().strip() == "pasted"
    mined = page.request.get("/api/inferences?source=mined&limit=1").json()["items"][0]["id"]
    other = page.locator("#inference-list tbody tr", has=page.locator(f"a[href='#/inference/{mined}']"))
    if other.count():
        assert other.locator(".source-pasted").count() == 0

    open_view(page, f"#/inference/{mined}")
    assert page.locator("#source-pasted").count() == 0 and page.locator("#delete-inference").count() == 0
    open_view(page, f"#/inference/{kept}")
    assert page.locator("#source-pasted").inner_text() == "pasted"
    page.click("#delete-inference")
    page.locator("#inference-deleted").wait_for()
    assert page.request.get(f"/api/inferences/{kept}").status == 404 and total() == before


def trained_predictor(browser_atlas):
    """A real `clusters_catboost` predictor of `identifiers` on the browser atlas's clustering,
    cross-validated and fitted by the training job's own `evaluate_and_store` on rows whose correctness one
    head (L2H1) decides (the tiny atlas has too few rows to train one); removed again on exit, so the other
    pages see none. Its cluster ids (0, 1) are the browser clustering's labels, so pasted code gets a real
    prediction."""
    from contextlib import contextmanager
    from types import SimpleNamespace

    from sqlalchemy import delete

    from attnlens.atlas.train_predictors import evaluate_and_store
    from attnlens.store.analyses import latest_clustering
    from attnlens.store.models import Predictor, PredictorEvaluation
    from tests.api.test_predictor_details import signal_rows

    settings, store = browser_atlas
    analysis = settings.analysis.model_copy(update={"cv_folds": 4, "predictor_iterations": 100})
    ctx = SimpleNamespace(
        settings=settings.model_copy(update={"analysis": analysis}), store=store, job=SimpleNamespace(id=None)
    )
    clustering = latest_clustering(store, settings.model.name)

    @contextmanager
    def trained():
        rows = signal_rows()
        summary = evaluate_and_store(ctx, rows, "clusters_catboost", clustering.id, settings.model.name)
        try:
            yield summary["predictor_id"]
        finally:
            with store.session() as session:
                ids = [summary["predictor_id"]]
                session.execute(delete(PredictorEvaluation).where(PredictorEvaluation.predictor_id.in_(ids)))
                session.execute(delete(Predictor).where(Predictor.id.in_(ids)))

    return trained()


def percentages(text: str) -> list[float]:
    return [float(x) / 100 for x in re.findall(r"(\d+(?:\.\d+)?)%", text)]


def assert_shown(text: str, values: list[float]) -> None:
    """The percentages in `text` are `values` as the page rounds them (one decimal)."""
    shown = percentages(text)
    assert len(shown) == len(values), (text, values)
    assert all(abs(s - v) <= 0.0005 + 1e-9 for s, v in zip(shown, values, strict=True)), (text, values)


def test_predictor_page_shows_the_evidence_behind_the_accuracy(page, browser_atlas):
    """The predictor page shows the API's numbers (accuracy [CI], chance, shuffled control, folds), a
    reliability diagram of the stored bins, a sortable table and a heatmap of every head's SHAP importance;
    a head (from the table or the heatmap) shows its clusters, whose medoid opens it in the gallery."""
    with trained_predictor(browser_atlas) as predictor_id:
        detail = page.request.get(f"/api/predictors/{predictor_id}").json()
        open_view(page, f"#/predictor/{predictor_id}")
        assert page.locator("#page h1").first.inner_text() == f"Predictor #{predictor_id}"
        assert_shown(page.locator("#predictor-accuracy").inner_text(),
                     [detail["accuracy"], detail["accuracy_low"], detail["accuracy_high"]])  # fmt: skip
        assert_shown(page.locator("#predictor-chance").inner_text(), [detail["chance"]])
        control = detail["shuffled_control"]
        assert_shown(page.locator("#predictor-shuffled").inner_text(),
                     [control["accuracy"], control["accuracy_low"], control["accuracy_high"]])  # fmt: skip
        verdict = page.locator("#predictor-verdict").inner_text()
        assert detail["above_chance"] and "lies above chance" in verdict
        assert page.locator("#predictor-rows").inner_text().startswith(f"{detail['n_rows']} ")
        folds = page.locator("#fold-table tbody tr td:nth-child(2)").all_inner_texts()
        assert_shown(" ".join(folds), detail["fold_accuracies"])
        page.wait_for_selector("#accuracy-plot .main-svg")

        page.wait_for_selector("#reliability-plot .main-svg")
        plotted = page.evaluate(
            "() => document.getElementById('reliability-plot').data.find((t) => t.name === 'observed')"
        )
        full = [b for b in detail["reliability"] if b["count"] > 0]
        assert plotted["x"] == [b["mean_predicted"] for b in full]
        assert plotted["y"] == [b["observed_rate"] for b in full]
        assert plotted["text"] == [str(b["count"]) for b in full]
        assert "near 0" in page.locator("#shap-note").inner_text()

        heads = detail["head_importance"]
        names = lambda: page.locator("#importance-table tbody tr").evaluate_all(  # noqa: E731
            "rows => rows.map((r) => r.dataset.head)"
        )
        by_abs = [x["name"] for x in sorted(heads, key=lambda x: -x["mean_abs_shap"])]
        assert names() == by_abs and by_abs[0] == "L2H1"  # the head that decides ranks first
        page.click("#importance-table button[data-sort=signed]")
        page.wait_for_function("location.hash.includes('sort=signed')")
        assert names() == [x["name"] for x in sorted(heads, key=lambda x: -x["mean_shap"])]
        page.click("#importance-table button[data-sort=signed]")
        page.wait_for_function("location.hash.includes('order=asc')")
        assert names() == [x["name"] for x in sorted(heads, key=lambda x: x["mean_shap"])]
        page.click("#importance-table button[data-sort=abs]")
        assert names() == by_abs
        sorted_by = page.locator("#importance-table th[aria-sort=descending]").inner_text()
        assert sorted_by.startswith("mean |SHAP|")

        page.wait_for_selector("#importance-heatmap .main-svg")
        z = page.evaluate("() => document.getElementById('importance-heatmap').data[0].z")
        assert all(z[x["layer"]][x["head"]] == x["mean_abs_shap"] for x in heads)
        x, y = page.evaluate("""() => {
            const gd = document.getElementById('importance-heatmap');
            const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
            return [box.left + gd._fullLayout.xaxis.l2p(3), box.top + gd._fullLayout.yaxis.l2p(0)];
        }""")
        page.mouse.click(x, y)
        page.wait_for_function("location.hash.includes('head=L0H3')")
        assert page.locator("#predictor-head h2").inner_text() == "L0H3"
        assert page.locator("#importance-table tr.selected").get_attribute("data-head") == "L0H3"

        page.click("#importance-table tr[data-head=L2H1] a.head-link")
        page.wait_for_function("location.hash.includes('head=L2H1')")
        assert page.locator("#predictor-head h2").inner_text() == "L2H1"
        medoid = page.locator("#predictor-head-clusters a.medoid-link").first
        medoid.wait_for()
        medoid.click()  # opens L2H1 of the medoid's completion in the gallery
        page.wait_for_selector("#page[data-page=inference][data-ready=true]")
        page.wait_for_function("location.hash.includes('head=L2H1')")
        assert page.locator("#head-detail h2").inner_text() == "L2H1"
        page.go_back()
        page.wait_for_selector("#page[data-page=predictor][data-ready=true]")
        page.wait_for_selector("#predictor-head-clusters a.medoid-link")
        assert page.locator("#importance-table tr.selected").get_attribute("data-head") == "L2H1"


def test_overview_and_paste_link_to_the_predictor_page(page, browser_atlas):
    """The overview's accuracy cell and the paste page's prediction ("how this predictor was measured")
    open the predictor's page."""
    with trained_predictor(browser_atlas) as predictor_id:
        open_view(page, "#/")
        page.click(f"#predictors a.predictor-link[href='#/predictor/{predictor_id}']")
        page.wait_for_selector("#page[data-page=predictor][data-ready=true]")
        assert page.locator("#page h1").first.inner_text() == f"Predictor #{predictor_id}"

        open_view(page, "#/paste")
        page.fill("#code", EVERY_TARGET)
        page.uncheck("#store-paste")
        page.evaluate(CURSOR_AT_0)
        page.select_option("#task", "identifiers")
        result = run_paste(page, "#analyze")
        assert result["prediction"] is not None, result["prediction_unavailable"]
        evidence = page.locator("#prediction-evidence")
        evidence.wait_for(state="visible")
        assert evidence.inner_text() == "how this predictor was measured"
        evidence.click()
        page.wait_for_selector("#page[data-page=predictor][data-ready=true]")
        assert page.url.endswith(f"#/predictor/{predictor_id}")


def test_api_docs_render_offline(page, live_server):
    """/api/docs draws every operation with assets served by the app itself: any request that leaves the
    server is aborted, as it would fail on a machine without network (FastAPI's default page loads Swagger
    UI from a CDN and stayed blank offline)."""
    outside: list[str] = []

    def guard(route):
        if route.request.url.startswith(live_server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.goto("/api/docs")
    page.locator(".opblock").first.wait_for()
    paths = page.request.get("/api/openapi.json").json()["paths"]
    shown = page.locator(".opblock").count()
    assert shown == sum(len(ops) for ops in paths.values())
    assert page.locator(".opblock-summary-path", has_text="/api/findings").count() >= 1
    assert outside == []


def test_log_scale_colours_the_whole_range_of_weights(page):
    """On the log scale the colour range reaches the smallest positive weight of the pattern (a fixed
    floor of -4 drew every smaller weight as a white hole), and the hover says it shows log10 weights. The
    module draws a hand-built pattern with weights down to 1e-7 (the tiny model's are never that small),
    then a stored one."""
    inference = first_inference(page)
    open_view(page, f"#/inference/{inference['id']}?head=L0H0")  # the log scale is the default
    page.wait_for_selector("#pattern-plot .main-svg")
    read = (
        "(div) => { const t = div.data[0]; return { zmin: t.zmin, zmax: t.zmax, hover: t.hovertemplate,"
        " title: t.colorbar.title.text, smallest: Math.min(...t.z.flat().filter((v) => v !== null)) }; }"
    )
    built = page.evaluate(
        "async (read) => { const { drawPattern } = await import('/js/heatmap.js');"
        " const div = document.createElement('div'); document.body.append(div);"
        " const values = [[1, 0, 0], [0.9999999, 1e-7, 0], [0.5, 0.25, 0.25]];"
        " await drawPattern(div, { tokens: ['a', 'b', 'c'], values }, { log: true });"
        " return eval(read)(div); }",
        read,
    )
    assert built["smallest"] == pytest.approx(-7) and built["zmin"] <= -7 and built["zmax"] == 0
    stored = page.evaluate(f"() => ({read})(document.querySelector('#pattern-plot'))")
    assert stored["zmin"] <= stored["smallest"] and stored["zmax"] == 0
    for trace in (built, stored):
        assert "log10 weight" in trace["hover"] and trace["title"] == "log10 weight"


def test_map_categories_never_share_a_look(page):
    """More categories than colours (14 tasks, 8 colours) take a new marker shape per round of colours:
    no two categories are drawn alike (they shared colours before)."""
    open_view(page, "#/map?color=task")
    page.wait_for_selector("#map-plot .main-svg")
    looks = page.evaluate(
        "async () => { const m = await import('/js/pages/map.js');"
        " return [...Array(32).keys()].map((g) => `${m.categoryColour(g)}/${m.categorySymbol(g)}`); }"
    )
    assert len(set(looks)) == 32
    drawn = page.evaluate(
        "() => document.getElementById('map-plot').data.map((t) => `${t.marker.color}/${t.marker.symbol}`)"
    )
    assert len(drawn) >= 2 and len(set(drawn)) == len(drawn)


def test_map_by_correctness_interleaves_outcomes_and_states_their_shares(page):
    """Coloured by first-token correctness, every point is in one trace in a shuffled order (a trace per
    outcome let the last one drawn cover the other), and the legend gives each outcome's share."""
    open_view(page, "#/map?color=correct")
    page.wait_for_selector("#map-plot .main-svg")
    traces = page.evaluate(
        "() => document.getElementById('map-plot').data.map((t) => ({ name: t.name,"
        " n: t.x.filter((v) => v !== null).length,"
        " colours: Array.isArray(t.marker.color) ? [...new Set(t.marker.color)].length : 1,"
        " outcomes: t.customdata ? t.customdata.map((c) => c[3]) : [] }))"
    )
    main, legend = traces[0], traces[1:]
    total = main["n"]
    assert total > 0 and all(t["n"] == 0 for t in legend)  # every point in the one drawn trace
    for entry in legend:
        outcome = entry["name"].split(":")[0]
        share = main["outcomes"].count(outcome) / total
        assert entry["name"].startswith(f"{outcome}: {100 * share:.1f}%")
    assert main["colours"] == len(legend)


def test_the_full_pattern_outlines_the_holes_row_and_column(page):
    inference = first_inference(page)
    open_view(page, f"#/inference/{inference['id']}?head=L1H2")
    page.wait_for_selector("#pattern-plot .main-svg")
    shapes = page.evaluate(
        "() => document.querySelector('#pattern-plot').layout.shapes.map((s) => [s.x0, s.x1, s.y0, s.y1])"
    )
    n = page.evaluate("() => document.querySelector('#pattern-plot').data[0].z.length")
    row, column = shapes
    assert row == [-0.5, n - 0.5, n - 1.5, n - 0.5]  # the last query row, across every key
    assert column[2:] == [-0.5, n - 0.5] and column[1] - column[0] == 1 and column[0] < n - 1.5  # FIM: inside
    assert "predicts the hole" in page.locator("#hole-marks").inner_text()


def test_exports_download_from_the_pages(page, browser_atlas):
    """The overview's and the map's CSV (and Parquet) buttons download the API's exports: every completion,
    every point."""
    import csv
    import io

    open_view(page, "#/")
    with page.expect_download() as got:
        page.click("#export-inferences")
    rows = list(csv.DictReader(io.StringIO(open(got.value.path(), encoding="utf-8").read())))
    total = page.request.get("/api/inferences?limit=1").json()["total"]
    assert got.value.suggested_filename.endswith("inferences.csv") and len(rows) == total
    assert {"id", "first_token_correct", "top1_prob"} <= set(rows[0])
    with page.expect_download() as got:
        page.click("#export-inferences-parquet")
    import pyarrow.parquet as pq

    table = pq.read_table(got.value.path())
    assert got.value.suggested_filename.endswith("inferences.parquet") and table.num_rows == total
    assert table.column("id").to_pylist() == [int(r["id"]) for r in rows]
    open_view(page, "#/map")
    page.wait_for_selector("#map-plot .main-svg")
    with page.expect_download() as got:
        page.click("#export-map")
    points = list(csv.DictReader(io.StringIO(open(got.value.path(), encoding="utf-8").read())))
    assert len(points) == page.request.get("/api/maps/latest").json()["total"]


def in_view(page, selector: str) -> bool:
    """Whether the element's first 100 pixels are on screen (what a click made is seen without scrolling)."""
    return page.evaluate(
        "(s) => { const b = document.querySelector(s).getBoundingClientRect();"
        " return b.top > -2 && b.top + Math.min(b.height, 100) <= window.innerHeight; }",  # -2: sub-pixels
        selector,
    )


def test_what_you_act_on_scrolls_into_view(page):
    """On a short window the paste result, the ablation result and a clicked head's detail render below
    the fold; the page brings each into view."""
    page.set_viewport_size({"width": 1280, "height": 420})
    open_view(page, "#/paste")
    page.fill("#code", "public class Counter {\n    private int count;\n    void inc() { count += 1; }\n}\n")
    page.evaluate(
        "() => { const t = document.querySelector('#code'); t.focus(); t.setSelectionRange(62, 67); }"
    )  # noqa: E501
    page.click("#analyze")
    page.wait_for_selector("#analyze-result dl")
    assert in_view(page, "#analyze-result")

    inference = first_inference(page)
    open_view(page, f"#/intervene/{inference['id']}")
    page.click("#regenerate")
    page.wait_for_selector("#ablation-slot .ablation, #ablation-slot table, #ablation-slot dl")
    assert in_view(page, "#ablation-slot")

    page.set_viewport_size({"width": 900, "height": 600})  # one column: the detail sits under the grid
    open_view(page, f"#/inference/{inference['id']}")
    page.locator(".grid-canvas").first.scroll_into_view_if_needed()
    page.mouse.click(*cell_point(page, 1, 2))
    page.wait_for_selector("#pattern-plot")
    assert in_view(page, "#head-detail")


def test_jobs_show_their_place_in_the_queue_parameters_and_result(page, browser_atlas):
    _settings, store = browser_atlas
    from attnlens.store.jobs import list_jobs

    for job in list_jobs(store, states=["queued"]):  # what other tests left queued: out of the way
        request_cancel(store, job.id)
    first = enqueue_job(store, "browser_queue_test", {"note": "first", "tasks": ["eol", "identifiers"]})
    second = enqueue_job(store, "browser_queue_test", {"note": "second"})
    done = enqueue_job(store, "browser_test_done", {"note": "done"})
    claim_job(store, "browser-test", kinds=["browser_test_done"])
    finish_job(store, done, "browser-test", {"inferences": 12, "seconds": 3.5, "per_task": {"eol": 6}})
    open_view(page, "#/jobs")
    queued = page.locator(f".job[data-job-id='{first}']")
    assert queued.locator(".queue-place").inner_text() == "next in the queue"
    assert page.locator(f".job[data-job-id='{second}'] .queue-place").inner_text() == "place 2 in the queue"
    assert queued.locator(".job-parameters").inner_text() == "parameters: note first · tasks eol, identifiers"
    result = page.locator(f".job[data-job-id='{done}'] .job-result").inner_text()
    assert result == "result: inferences 12 · seconds 3.5"  # nested values left out of the one line
    for job_id in (first, second):  # leave the queue as it was found
        request_cancel(store, job_id)
