"""Heads across models in Chromium: the head x head page of two models embedded by one AP-MAE checkpoint
(hover, a click through to the other model's head, the label validation table) and the head page's
"related heads in other models". The models are written beside the browser atlas with the store's own write
functions, on the atlas's own AP-MAE checkpoint and tasks, with enough patterns per task to compare."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from attnlens.store.head_moments import head_task_moments, model_embedders
from tests.browser.conftest import SCREENSHOTS, open_view, private_server, watched_page
from tests.store.second_model import SECOND_GRID, add_second_model

pytestmark = pytest.mark.browser
LEFT, RIGHT = "tiny-left", "tiny-right"


@pytest.fixture(scope="module")
def compared(browser_atlas, served_worker, tmp_path_factory) -> Iterator[tuple[str, Any]]:
    settings, _store = browser_atlas
    data = tmp_path_factory.mktemp("compare-models") / "data"
    with private_server(settings, served_worker, data, "compare-test-server") as (url, mine, store):
        with store.session() as session:
            (embedder,) = model_embedders(session, mine.model.name)
            dim = head_task_moments(session, mine.model.name, embedder).means.shape[2]
        # 12 completions each: 6 per task, above the 5 patterns a task the pages ask for by default.
        add_second_model(store, LEFT, n=12, embedder=embedder, dim=dim, seed=1)
        add_second_model(store, RIGHT, n=12, embedder=embedder, dim=dim, seed=2, grid=(3, 2))
        yield url, mine


def test_the_head_by_head_page_draws_every_pair_and_clicks_through(chromium, compared):
    url, _settings = compared
    with watched_page(chromium, url) as page:
        open_view(page, f"#/compare?model={LEFT}&other={RIGHT}")
        page.wait_for_selector("#cross-matrix .main-svg")
        z = page.evaluate("() => document.getElementById('cross-matrix').data[0].z")
        assert len(z) == SECOND_GRID[0] * SECOND_GRID[1] and all(len(row) == 6 for row in z)
        assert all(v is not None and v >= 0 for row in z for v in row)
        rows = page.locator("#cross-agreement tbody tr")
        assert rows.count() == 3
        assert rows.first.inner_text().startswith("previous-token\t")
        assert "2 shared tasks" in page.locator(".facts").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "compare_models.png"), full_page=True)
        # Hover names both heads; a click opens the other model's head.
        box = page.locator("#cross-matrix .nsewdrag").first.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)
        page.wait_for_selector(".hoverlayer .hovertext")
        hover = page.locator(".hoverlayer .hovertext").text_content() or ""
        assert f"{LEFT} L0H0" in hover and f"{RIGHT} L0H0" in hover and "distance" in hover
        page.mouse.click(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)
        page.wait_for_function(f"location.hash === '#/head/L0H0?model={RIGHT}'")
        page.wait_for_selector("#page[data-ready=true]")
        assert f"model {RIGHT}" in page.locator(".facts").inner_text()


def test_changing_the_patterns_per_task_keeps_it_in_the_url(chromium, compared):
    url, _settings = compared
    with watched_page(chromium, url, expected_http_errors=("/api/cross-model",)) as page:
        open_view(page, f"#/compare?model={LEFT}&other={RIGHT}")
        page.fill("#compare-min", "7")  # more than the 6 patterns a task these models have
        page.dispatch_event("#compare-min", "change")
        page.wait_for_function("location.hash.includes('min=7')")
        page.wait_for_selector("#page[data-ready=true]")
        page.wait_for_selector(".error")
        assert "at least 7 patterns" in page.locator(".error").inner_text()


def test_the_head_page_lists_related_heads_in_other_models(chromium, compared):
    url, settings = compared
    with watched_page(chromium, url) as page:
        open_view(page, f"#/head/L1H2?model={LEFT}")
        page.wait_for_selector("#related-across .related-across")
        groups = page.locator("#related-across .related-across")
        by_model = {groups.nth(i).get_attribute("data-model"): groups.nth(i) for i in range(groups.count())}
        # The served tiny model has 3 patterns a task: listed, with the reason it cannot be compared yet.
        assert set(by_model) == {RIGHT, settings.model.name}
        assert by_model[settings.model.name].locator(".too-few").count() == 1
        nearest = by_model[RIGHT].locator("li")
        assert nearest.count() == 5
        link = nearest.first.locator("a").get_attribute("href")
        assert link is not None and link.endswith(f"?model={RIGHT}")
        by_model[RIGHT].screenshot(path=str(SCREENSHOTS / "head_related_across.png"))
        by_model[RIGHT].locator("a", has_text="head × head matrix").click()
        page.wait_for_function(f"location.hash.startsWith('#/compare?other={RIGHT}')")
        page.wait_for_selector("#cross-matrix .main-svg")
