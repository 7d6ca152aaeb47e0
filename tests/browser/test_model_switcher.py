"""One atlas, two models, in Chromium: a private copy of the browser atlas (the tiny StarCoder2's completions,
a clustering and a map) with a second model's completions written beside them (2 x 3 heads, its own
embedder). The switcher in the header lists both, the served one marked; choosing the second puts it in the
URL, the heads page and an inference's gallery show its grid, a reload and the nav links keep it, the atlas
page's model table lists both with their counts, and Paste Java says it uses the served model. On the shared
one-model atlas the switcher names its one model. No console error anywhere (`watched_page`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view, private_server, watched_page
from tests.store.second_model import SECOND_GRID, SECOND_MODEL, add_second_model

pytestmark = pytest.mark.browser
GRID = f"{SECOND_GRID[0]} layers × {SECOND_GRID[1]}"


@pytest.fixture(scope="module")
def two_models(browser_atlas, served_worker, tmp_path_factory) -> Iterator[tuple[str, Any, Any]]:
    """url, settings, store of a server over the browser atlas plus SECOND_MODEL's 8 completions. The second
    model is registered as a `tiny` preset for this module, so that the server can show its tokens (the
    tiny tokenizer) in its gallery; its family is then the preset's."""
    from attnlens.atlas.indexing import sync_index
    from attnlens.contracts.models import PRESETS, ModelPreset, register_preset

    settings, _store = browser_atlas
    register_preset(ModelPreset(SECOND_MODEL, "tiny", "starcoder2", "a second tiny model, for this test"))
    try:
        data = tmp_path_factory.mktemp("two-models") / "data"
        with private_server(settings, served_worker, data, "two-models-test-server") as (url, mine, store):
            add_second_model(store)
            sync_index(mine, store)  # as a build does: its patterns are searchable (nearest patterns)
            yield url, mine, store
    finally:
        del PRESETS[SECOND_MODEL]


def wait_ready(page) -> None:
    page.wait_for_selector("#page[data-ready=true]")


def switcher(page) -> tuple[list[str], str]:
    """The switcher's options (as shown) and its value, once it has loaded."""
    page.wait_for_selector("#model-switcher-label:not([hidden])")
    return page.locator("#model-switcher option").all_text_contents(), page.input_value("#model-switcher")


def test_switching_models_keeps_the_choice_in_the_url(chromium, two_models):
    url, settings, _store = two_models
    served = settings.model.name
    with watched_page(chromium, url) as page:
        open_view(page, "#/heads")
        assert switcher(page) == ([f"{served} (served)", SECOND_MODEL], served)
        assert "4 layers × 4 heads" in page.locator(".facts").inner_text()
        page.locator("header.topbar").screenshot(path=str(SCREENSHOTS / "model_switcher_header_served.png"))

        # Choosing the second model puts it in the URL, and the heads page shows its grid.
        page.select_option("#model-switcher", SECOND_MODEL)
        page.wait_for_function(f"location.hash === '#/heads?model={SECOND_MODEL}'")
        wait_ready(page)
        facts = page.locator(".facts").inner_text()
        assert f"model {SECOND_MODEL}" in facts and f"{GRID} heads" in facts
        page.wait_for_selector("#heads-plot .main-svg")
        points = "() => document.getElementById('heads-plot').data.reduce((n, t) => n + t.x.length, 0)"
        assert page.evaluate(points) == 6
        page.locator("header.topbar").screenshot(path=str(SCREENSHOTS / "model_switcher_header_second.png"))
        page.screenshot(path=str(SCREENSHOTS / "model_switcher_heads_second.png"), full_page=True)

        # A reload keeps the choice.
        page.reload()
        wait_ready(page)
        assert switcher(page)[1] == SECOND_MODEL
        assert f"{GRID} heads" in page.locator(".facts").inner_text()

        # So does a nav link: the atlas page, with its table of models and the second model's completions.
        assert page.get_attribute("nav a[data-nav='']", "href") == f"#/?model={SECOND_MODEL}"
        page.click("nav a[data-nav='']")
        page.wait_for_function(f"location.hash === '#/?model={SECOND_MODEL}'")
        wait_ready(page)
        page.wait_for_selector("#inference-list")
        listed = {m["name"]: m for m in page.request.get("/api/atlas/models").json()}
        rows = page.locator("#models-table tbody tr")
        assert rows.count() == 2
        for i, name in enumerate([served, SECOND_MODEL]):
            row = rows.nth(i)
            m = listed[name]
            assert row.get_attribute("data-model") == name
            assert row.locator(".model-inferences").inner_text().split(" ")[0] == f"{m['inferences']:,}"
            assert row.locator(".model-patterns").inner_text() == f"{m['head_patterns']:,}"
            assert row.locator(".model-grid").inner_text() == f"{m['n_layers']} × {m['n_heads']}"
        assert listed[SECOND_MODEL]["inferences"] == 8 and listed[SECOND_MODEL]["head_patterns"] == 48
        assert "served" in rows.nth(0).inner_text() and "shown-model" in rows.nth(1).get_attribute("class")
        assert SECOND_MODEL in page.locator("#shown-model-notice").inner_text()
        assert page.locator("#inference-list tbody tr").count() == 8  # the second model's completions only
        page.screenshot(path=str(SCREENSHOTS / "model_switcher_atlas_page.png"), full_page=True)

        # An inference of the second model: its grid; the full pattern is not recomputed on the served model.
        page.click("#inference-list tbody tr:first-child a")
        page.wait_for_function(f"/^#\\/inference\\/\\d+\\?model={SECOND_MODEL}$/.test(location.hash)")
        wait_ready(page)
        assert page.locator("#page h2:has-text('Heads (')").inner_text() == f"Heads ({GRID} heads)"
        assert page.locator(".inference-model").inner_text() == f"model {SECOND_MODEL}"
        inference_id = page.evaluate("() => location.hash.split('/')[2].split('?')[0]")
        open_view(page, f"#/inference/{inference_id}?head=L1H2&model={SECOND_MODEL}")
        notice = page.locator("#pattern-not-recomputed")
        notice.wait_for()
        assert served in notice.inner_text() and SECOND_MODEL in notice.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "model_switcher_gallery_second.png"), full_page=True)

        # Paste Java runs the served model, and says so.
        page.click("nav a[data-nav='paste']")
        page.wait_for_function(f"location.hash === '#/paste?model={SECOND_MODEL}'")
        wait_ready(page)
        said = page.locator("#served-model-notice").inner_text()
        assert f"This page uses the served model {served}" in said and SECOND_MODEL in said
        page.screenshot(path=str(SCREENSHOTS / "model_switcher_paste_notice.png"))

        # Back to the served model: no `model=` in the URL, and the notice is gone.
        page.select_option("#model-switcher", served)
        page.wait_for_function("location.hash === '#/paste'")
        wait_ready(page)
        assert page.locator("#served-model-notice").count() == 0
        assert page.get_attribute("nav a[data-nav='heads']", "href") == "#/heads"


def test_a_head_page_follows_the_switch_where_the_other_grid_has_the_head(chromium, two_models):
    url, settings, _store = two_models
    with watched_page(chromium, url) as page:
        open_view(page, "#/head/L1H2")
        switcher(page)
        page.select_option("#model-switcher", SECOND_MODEL)
        page.wait_for_function(f"location.hash === '#/head/L1H2?model={SECOND_MODEL}'")
        wait_ready(page)
        assert f"model {SECOND_MODEL}" in page.locator(".facts").inner_text()
        page.wait_for_selector("#head-examples .head-example")
        assert page.locator(".show-overlay").count() == 0  # the overlay would recompute on the served model
        # A note written here is the second model's.
        page.fill("#note-form input[name=label]", "second model's note")
        page.click("#note-form button[type=submit]")
        page.wait_for_selector("#user-notes li")
        served = settings.model.name
        of = "/api/notes?kind=head&target=L1H2&model="
        notes = {m: [n["label"] for n in page.request.get(of + m).json()] for m in (served, SECOND_MODEL)}
        assert notes == {served: [], SECOND_MODEL: ["second model's note"]}
        # L3H3 is past the second model's 2 x 3 grid: switching there goes to every head.
        open_view(page, "#/head/L3H3")
        switcher(page)
        page.select_option("#model-switcher", SECOND_MODEL)
        page.wait_for_function(f"location.hash === '#/heads?model={SECOND_MODEL}'")
        wait_ready(page)


def test_a_model_the_atlas_does_not_hold_is_said(chromium, two_models):
    url, settings, _store = two_models
    with watched_page(chromium, url) as page:
        open_view(page, "#/heads?model=no-such-model")
        options, value = switcher(page)
        assert value == "no-such-model" and options[-1] == "no-such-model (not in this atlas)"
        notice = page.locator("#model-notice")
        assert notice.is_visible() and "no-such-model" in notice.inner_text()
        notice.locator("a").click()
        page.wait_for_function("location.hash === '#/heads'")
        wait_ready(page)
        assert not page.locator("#model-notice").is_visible()


def test_a_one_model_atlas_names_its_model(page, browser_atlas):
    settings, _store = browser_atlas
    open_view(page, "#/")
    assert switcher(page) == ([f"{settings.model.name} (served)"], settings.model.name)
    assert page.locator("#model-switcher").is_disabled()
    assert page.locator("#models-table tbody tr").count() == 1
    assert page.locator("#shown-model-notice").count() == 0
