"""The cluster map's filters, box selection and hidden completions, in Chromium over the real app and the tiny
atlas's real 2-D map. Every expected number and id comes from the atlas's SQLite file (SQLAlchemy), never from
the page's own counts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view

pytestmark = pytest.mark.browser

SHOWN_ROWS = 50  # the selection table's cap (map_selection.js SELECTION_ROWS)


def map_rows(store) -> tuple[int, list[dict[str, Any]]]:
    """(map id, every point of the newest map with its pattern's head, task, outcome and completion)."""
    from sqlalchemy import select

    from attnlens.store.models import HeadPattern, Inference, MapPoint, PatternMap, Scenario

    with store.session() as session:
        map_id = session.scalar(select(PatternMap.id).order_by(PatternMap.id.desc()).limit(1))
        rows = session.execute(
            select(MapPoint.head_pattern_id, MapPoint.x, MapPoint.y, HeadPattern.layer, HeadPattern.head,
                   HeadPattern.inference_id, Scenario.task, Inference.first_token_correct)
            .join(HeadPattern, HeadPattern.id == MapPoint.head_pattern_id)
            .join(Inference, Inference.id == HeadPattern.inference_id)
            .outerjoin(Scenario, Scenario.id == Inference.scenario_id)
            .where(MapPoint.pattern_map_id == map_id)
        ).all()  # fmt: skip
    keys = ("id", "x", "y", "layer", "head", "inference", "task", "correct")
    return map_id, [dict(zip(keys, row, strict=True)) for row in rows]


def count_line(page) -> tuple[int, int]:
    """(shown, loaded) from the page's "N of M points shown"."""
    text = page.locator("#map-count strong").inner_text()
    match = re.fullmatch(r"([\d,]+) of ([\d,]+) points shown", text)
    assert match, text
    return int(match[1].replace(",", "")), int(match[2].replace(",", ""))


def wait_for_count(page, shown: int) -> None:
    page.wait_for_function(
        "(n) => (document.querySelector('#map-count strong')?.textContent || '').startsWith(n + ' of ')",
        arg=f"{shown:,}",
    )


def plotted_ids(page) -> list[int]:
    """The pattern id of every point drawn (legend-only traces have no customdata)."""
    return page.evaluate(
        "() => document.getElementById('map-plot').data.flatMap((t) => (t.customdata || []).map((c) => c[4]))"
    )


def url_param(page, name: str) -> str | None:
    return page.evaluate("(n) => new URLSearchParams(location.hash.split('?')[1] || '').get(n)", name)


def wait_for_param(page, name: str, value: str | None) -> None:
    page.wait_for_function(
        "([n, v]) => new URLSearchParams(location.hash.split('?')[1] || '').get(n) === v", arg=[name, value]
    )


def open_map(page, route: str = "#/map") -> None:
    open_view(page, route)
    page.wait_for_selector("#map-plot .main-svg")


def test_filters_narrow_the_points_to_what_the_database_holds_and_survive_reload(page, browser_atlas):
    _settings, store = browser_atlas
    map_id, rows = map_rows(store)
    open_map(page)
    assert page.request.get("/api/maps/latest").json()["map_id"] == map_id
    assert count_line(page) == (len(rows), len(rows))
    assert sorted(plotted_ids(page)) == sorted(r["id"] for r in rows)
    # The task options are the server's task list (GET /api/tasks), each with its points on this map.
    served = [t["name"] for t in page.request.get("/api/tasks").json()]
    offered = page.locator("#map-task option").evaluate_all("os => os.map((o) => o.value)")
    assert offered[0] == "" and offered[1 : 1 + len(served)] == served
    by_task = {t: sum(r["task"] == t for r in rows) for t in served}
    for name, n in by_task.items():
        assert page.locator(f"#map-task option[value='{name}']").inner_text() == f"{name} ({n:,} points)"

    # The task with both outcomes if there is one, so that the correctness filter really narrows it.
    outcomes = {t: {r["correct"] for r in rows if r["task"] == t} for t in {r["task"] for r in rows}}
    task = max(outcomes, key=lambda t: (len(outcomes[t]), t or ""))
    outcome = "false" if any(r["task"] == task and r["correct"] is False for r in rows) else "true"

    def expected(layers=None, heads=None, task_=None, correct=None) -> list[int]:
        return sorted(
            r["id"] for r in rows
            if (layers is None or r["layer"] in layers) and (heads is None or r["head"] in heads)
            and (task_ is None or r["task"] == task_)
            and (correct is None or r["correct"] is (correct == "true"))
        )  # fmt: skip

    page.fill("#map-layer", "1-2")
    wait_for_param(page, "layer", "1-2")
    wait_for_count(page, len(expected({1, 2})))
    assert sorted(plotted_ids(page)) == expected({1, 2})
    page.fill("#map-head", "0,3")
    wait_for_param(page, "head", "0,3")
    page.select_option("#map-task", task)
    wait_for_param(page, "task", task)
    page.select_option("#map-correct", outcome)
    wait_for_param(page, "correct", outcome)
    narrowed = expected({1, 2}, {0, 3}, task, outcome)
    assert narrowed, "the tiny atlas should have points of this kind"
    wait_for_count(page, len(narrowed))
    assert count_line(page) == (len(narrowed), len(rows))
    assert sorted(plotted_ids(page)) == narrowed
    verdict = "wrong" if outcome == "false" else "right"
    words = page.locator("#map-count").inner_text()
    assert f"layers 1-2 · heads 0,3 · task {task} · first token {verdict}" in words

    page.reload()
    page.wait_for_selector("#page[data-ready=true]")
    page.wait_for_selector("#map-plot .main-svg")
    assert count_line(page) == (len(narrowed), len(rows))
    assert sorted(plotted_ids(page)) == narrowed
    assert page.input_value("#map-layer") == "1-2" and page.input_value("#map-head") == "0,3"
    assert page.input_value("#map-task") == task and page.input_value("#map-correct") == outcome

    # A layer text that does not read is flagged and changes nothing.
    page.fill("#map-layer", "1-x")
    page.wait_for_selector("#map-layer[aria-invalid=true]")
    assert '"1-x" is not a number or a range' in page.locator("#map-filter-problem").inner_text()
    assert url_param(page, "layer") == "1-2" and count_line(page)[0] == len(narrowed)

    page.click("#map-clear-filters")
    wait_for_count(page, len(rows))
    assert url_param(page, "layer") is None and url_param(page, "task") is None
    assert page.input_value("#map-layer") == "" and page.input_value("#map-task") == ""


def plot_area(page) -> dict[str, Any]:
    """Where Plotly draws the axes' ranges on the page (its own reported geometry)."""
    return page.evaluate("""() => {
        const gd = document.getElementById('map-plot'); const L = gd._fullLayout;
        const box = gd.getBoundingClientRect();
        return {left: box.left + L.xaxis._offset, top: box.top + L.yaxis._offset, width: L.xaxis._length,
                height: L.yaxis._length, xr: L.xaxis.range, yr: L.yaxis.range};
    }""")


def drag_box(page, area: dict[str, Any], x0: float, x1: float, y0: float, y1: float) -> None:
    """Drag the mouse over the data box [x0, x1] x [y0, y1] (map coordinates)."""

    def pixel(x: float, y: float) -> tuple[float, float]:
        (xa, xb), (ya, yb) = area["xr"], area["yr"]
        return (
            area["left"] + (x - xa) / (xb - xa) * area["width"],
            area["top"] + (yb - y) / (yb - ya) * area["height"],
        )

    start, end = pixel(x0, y1), pixel(x1, y0)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=12)
    page.mouse.up()


def listed_ids(page) -> list[int]:
    rows = page.locator("#map-selection-table tbody tr")
    return [int(v) for v in rows.evaluate_all("rs => rs.map((r) => r.dataset.pattern)")]


def select_everything(page, area: dict[str, Any]) -> None:
    """Drag a box over the whole plot but a 1% rim (the page pads the map's extent by 4%)."""
    (xa, xb), (ya, yb) = area["xr"], area["yr"]
    dx, dy = 0.01 * (xb - xa), 0.01 * (yb - ya)
    drag_box(page, area, xa + dx, xb - dx, ya + dy, yb - dy)


def wait_for_selected(page, n: int) -> None:
    page.wait_for_function(
        "(n) => (document.querySelector('#map-selection-count')?.textContent || '').startsWith(n + ' patt')",
        arg=f"{n:,}",
    )


def test_a_box_selection_lists_the_patterns_inside_the_box(page, browser_atlas):
    _settings, store = browser_atlas
    _map_id, rows = map_rows(store)
    shown = [r for r in rows if r["layer"] in (0, 1)]
    open_map(page, "#/map?drag=select&layer=0-1")
    assert page.input_value("#map-drag") == "select"
    wait_for_count(page, len(shown))
    assert "Pick box select or lasso" in page.locator("#map-selection-help").inner_text()

    xs, ys = sorted(r["x"] for r in shown), sorted(r["y"] for r in shown)
    x0, x1 = xs[len(xs) // 5], xs[4 * len(xs) // 5]
    y0, y1 = ys[len(ys) // 5], ys[4 * len(ys) // 5]
    area = plot_area(page)
    drag_box(page, area, x0, x1, y0, y1)
    page.wait_for_selector("#map-selection-count")
    # The box as Plotly recorded it in map units (the drag's pixels rounded), else the box asked for.
    box = page.evaluate("() => (document.getElementById('map-plot').layout.selections || [])[0] || null")
    box = box or {"x0": x0, "x1": x1, "y0": y0, "y1": y1}
    bx0, bx1 = sorted((box["x0"], box["x1"]))
    by0, by1 = sorted((box["y0"], box["y1"]))
    # Points within 2 pixels of the box's edge may fall either way (Plotly tests pixels, not map units).
    dx = 2 * (area["xr"][1] - area["xr"][0]) / area["width"]
    dy = 2 * (area["yr"][1] - area["yr"][0]) / area["height"]
    inside = {r["id"] for r in shown if bx0 + dx < r["x"] < bx1 - dx and by0 + dy < r["y"] < by1 - dy}
    near = {r["id"] for r in shown if bx0 - dx <= r["x"] <= bx1 + dx and by0 - dy <= r["y"] <= by1 + dy}
    assert 5 <= len(inside) < len(shown)
    count = int(page.locator("#map-selection-count").inner_text().split()[0].replace(",", ""))
    listed = listed_ids(page)
    assert len(listed) == min(count, SHOWN_ROWS) and listed == sorted(listed)
    if count <= SHOWN_ROWS:
        assert inside <= set(listed) <= near
    else:
        assert set(listed) <= near and len(inside) <= count <= len(near)
    by_id = {r["id"]: r for r in rows}
    first = page.locator("#map-selection-table tbody tr").first
    r = by_id[listed[0]]
    assert first.locator("td").nth(1).inner_text() == f"L{r['layer']}H{r['head']}"
    assert first.locator("td").nth(4).inner_text() == f"#{r['inference']}"
    selected = [by_id[i] for i in listed] if count <= SHOWN_ROWS else None
    if selected:
        right = sum(s["correct"] is True for s in selected)
        known = sum(s["correct"] is not None for s in selected)
        assert f"({right} of {known})" in page.locator("#map-selection-outcomes").inner_text()

    # The whole plot: every point shown is selected, and the table holds the first 50 by pattern id.
    select_everything(page, area)
    wait_for_selected(page, len(shown))
    assert listed_ids(page) == sorted(r["id"] for r in shown)[:SHOWN_ROWS]
    capped = page.locator("#map-selection-shown").inner_text()
    assert capped.startswith(f"Showing the first {SHOWN_ROWS} of {len(shown)} selected patterns")
    completions = len({r["inference"] for r in shown})
    assert f"from {completions} completions" in page.locator("#map-selection-summary").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "map_filters_selection.png"), full_page=True)

    # A row opens its pattern (the map's click does the same).
    target = listed_ids(page)[3]
    page.locator(f"#map-selection-table tr[data-pattern='{target}'] td").nth(2).click()
    page.wait_for_function("location.hash.startsWith('#/inference/')")
    page.wait_for_selector("#pattern-plot .main-svg")
    assert page.locator("#head-detail .muted").first.text_content().startswith(f"pattern {target} ")


def test_hiding_a_completion_removes_exactly_its_points_and_undo_brings_them_back(page, browser_atlas):
    _settings, store = browser_atlas
    _map_id, rows = map_rows(store)
    by_id = {r["id"]: r for r in rows}
    everything = sorted(by_id)
    open_map(page, "#/map?color=task")
    # Hover the first point of the first trace (Plotly's own axes say where it is), then hide its completion.
    x, y = page.evaluate("""() => {
        const gd = document.getElementById('map-plot'); const t = gd.data[0]; const L = gd._fullLayout;
        const box = gd.getBoundingClientRect();
        return [box.left + L.margin.l + L.xaxis.l2p(t.x[0]), box.top + L.margin.t + L.yaxis.l2p(t.y[0])];
    }""")
    page.mouse.move(x, y)
    page.wait_for_selector("#map-preview-hide")
    # The point the preview names (another point may lie as close to the pointer).
    pattern_id = int(page.locator("#map-preview h2").inner_text().rsplit("pattern ", 1)[1])
    first = by_id[pattern_id]["inference"]
    page.click("#map-preview-hide")
    wait_for_param(page, "exclude", str(first))
    left = [i for i in everything if by_id[i]["inference"] != first]
    assert 0 < len(left) < len(everything)
    wait_for_count(page, len(left))
    assert sorted(plotted_ids(page)) == left
    chip = page.locator(f"#map-exclusions .map-exclusion[data-inference='{first}']")
    n_first = len(everything) - len(left)
    assert f"completion #{first} · {by_id[pattern_id]['task']} · {n_first} points" in chip.inner_text()
    assert "1 completion hidden" in page.locator("#map-count").inner_text()

    page.reload()
    page.wait_for_selector("#page[data-ready=true]")
    page.wait_for_selector("#map-plot .main-svg")
    assert count_line(page) == (len(left), len(everything)) and sorted(plotted_ids(page)) == left

    # A second completion, hidden from the selection table; the selection keeps what is still shown.
    page.select_option("#map-drag", "select")
    wait_for_param(page, "drag", "select")
    select_everything(page, plot_area(page))
    wait_for_selected(page, len(left))
    row = page.locator("#map-selection-table tbody tr").first
    second = by_id[int(row.get_attribute("data-pattern"))]["inference"]
    row.get_by_role("button", name="hide completion").click()
    wait_for_param(page, "exclude", ",".join(str(i) for i in sorted({first, second})))
    both = [i for i in left if by_id[i]["inference"] != second]
    wait_for_count(page, len(both))
    assert sorted(plotted_ids(page)) == both
    assert page.locator("#map-selection-count").inner_text().startswith(f"{len(both):,} patterns selected")
    assert second not in {by_id[i]["inference"] for i in listed_ids(page)}
    page.screenshot(path=str(SCREENSHOTS / "map_filters_hidden.png"), full_page=True)

    page.locator(f"#map-exclusions .map-exclusion[data-inference='{first}'] button").click()
    wait_for_param(page, "exclude", str(second))
    assert sorted(plotted_ids(page)) == [i for i in everything if by_id[i]["inference"] != second]
    page.locator(f"#map-exclusions .map-exclusion[data-inference='{second}'] button").click()
    wait_for_param(page, "exclude", None)
    wait_for_count(page, len(everything))
    assert sorted(plotted_ids(page)) == everything
    assert page.locator("#map-exclusions").count() == 0

    # Hidden completions from the address; one button shows them all again.
    open_map(page, f"#/map?exclude={first},{second}")
    wait_for_count(page, len(both))
    assert page.locator("#map-exclusions .map-exclusion").count() == 2
    page.click("#map-undo-all")
    wait_for_param(page, "exclude", None)
    wait_for_count(page, len(everything))
