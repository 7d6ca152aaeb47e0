"""The static snapshot of `attnlens export-site`, opened in Chromium from file:// with no server running: the
pages render without a console error or a single network request, the map draws with the plotly.min.js
written beside them, and the links between the pages work. Screenshots: test-output/screenshots/site_*.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.atlas.test_site import add_predictors
from tests.browser.conftest import SCREENSHOTS, VIEWPORT, PageProblems
from tests.conftest import copy_atlas

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def snapshot(browser_atlas, tmp_path_factory) -> Path:
    """A private copy of the browser atlas (the tiny atlas with a clustering and a map) with predictors,
    exported; nothing is served."""
    from attnlens.atlas.site import SiteRequest, export_site
    from attnlens.store import open_store

    settings, _store = browser_atlas
    data_dir = tmp_path_factory.mktemp("site-atlas") / "data"
    copy_atlas(settings.data_dir, data_dir)
    copied = settings.model_copy(update={"data_dir": data_dir})
    store = open_store(copied)
    add_predictors(store, copied.model.name)
    out = tmp_path_factory.mktemp("site") / "snapshot"
    export_site(copied, store, SiteRequest(out_dir=out, model_name=copied.model.name))
    return out


@pytest.fixture
def offline_page(chromium):
    """A page with no base URL whose every non-file request fails the test; console and page errors too."""
    problems = PageProblems()
    requests: list[str] = []
    context = chromium.new_context(viewport=VIEWPORT)

    def refuse(route) -> None:
        requests.append(route.request.url)
        route.abort()

    context.route("http*://**/*", refuse)
    page = context.new_page()
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    page.set_default_timeout(20_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield page
    context.close()
    assert not problems.messages, "\n".join(problems.messages)
    assert not requests, f"the snapshot asked the network for {requests}"


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"site_{name}.png"), full_page=True)


def test_overview_inference_map_and_heads_open_from_file_urls(offline_page, snapshot, browser_atlas):
    settings, _store = browser_atlas
    page = offline_page
    page.goto((snapshot / "index.html").as_uri())
    assert page.locator("#model-name").inner_text() == settings.model.name
    assert page.locator("#task-table tbody tr").count() == 4  # the tiny atlas's tasks
    assert page.locator("#predictors td.above-chance").count() == 1
    assert page.locator("#important-heads tbody tr").count() == 1  # one task's predictors rank heads
    shot(page, "index")

    first = page.locator("#inference-list tbody tr a").first
    target = first.get_attribute("href")
    first.click()
    page.wait_for_url(f"**/{target}")
    page.locator("#hole").wait_for()
    assert page.locator("#head-grid img").count() == 16
    # Each thumbnail is a decoded image, and each cell names its head and statistics on hover.
    assert page.evaluate("[...document.querySelectorAll('#head-grid img')].every((i) => i.naturalWidth > 0)")
    assert "entropy" in page.locator("#head-grid td[data-head=L2H1]").get_attribute("title")
    # The code box scrolled its hole into view.
    assert page.evaluate(
        "(() => { const p = document.getElementById('code'), h = document.getElementById('hole');"
        " return h.offsetTop >= p.scrollTop && h.offsetTop <= p.scrollTop + p.clientHeight; })()"
    )
    shot(page, "inference")

    page.locator("header nav a", has_text="Map").click()
    page.wait_for_url("**/map.html")
    page.locator("#map-plot .main-svg").first.wait_for()
    page.wait_for_function("document.querySelectorAll('#map-plot canvas').length > 0")
    assert "192 of 192 points shown" in page.locator("#map-count").inner_text()
    assert page.locator("#map-plot .legendtext").count() == 4
    shot(page, "map")

    page.locator("header nav a", has_text="Heads").click()
    page.wait_for_url("**/heads.html")
    assert page.locator("#heads-table tbody tr").count() == 16
    shot(page, "heads")

    page.locator("header nav a", has_text="Overview").click()
    page.wait_for_url("**/index.html")
    page.locator("#task-table").wait_for()
