"""The hole's attention row over the code (gallery): every prompt token shaded by the weight the hole's query
gives it, the five heaviest keys listed, all as the API's full pattern says; kept in the URL."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import SCREENSHOTS, open_view

pytestmark = pytest.mark.browser


def test_the_hole_row_is_drawn_over_the_code(page, live_server):
    items = httpx.get(f"{live_server}/api/inferences?limit=3&task=identifiers").json()["items"]
    inference_id = items[0]["id"]
    grid = httpx.get(f"{live_server}/api/inferences/{inference_id}/heads").json()
    cell = next(c for c in grid["heads"] if c["name"] == "L2H1")
    pattern = httpx.get(f"{live_server}/api/patterns/{cell['id']}", timeout=60).json()
    row = pattern["values"][pattern["hole_query"]]

    open_view(page, f"#/inference/{inference_id}?head=L2H1&overlay=1")
    page.wait_for_selector("#attention-overlay .tok")
    tokens = page.locator("#attention-overlay .tok")
    weights = tokens.evaluate_all("s => s.map(x => Number(x.dataset.weight))")
    assert weights == pytest.approx(row, abs=1e-9) and len(weights) == len(pattern["tokens"])
    texts = tokens.evaluate_all("s => s.map(x => x.textContent)")
    assert texts == pattern["tokens"]
    heaviest = sorted(range(len(row)), key=lambda k: -row[k])[:5]
    listed = page.locator("#top-keys li").all_inner_texts()
    assert [int(t.split()[1]) for t in listed] == heaviest
    top = page.locator("#attention-overlay .tok-top")
    outlined = top.evaluate_all("s => s.map(x => Number(x.dataset.key))")
    assert sorted(outlined) == sorted(heaviest)
    page.locator("#attention-overlay").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "gallery_attention_overlay.png"), full_page=True)

    page.uncheck("#overlay-toggle")
    assert page.locator("#attention-overlay").count() == 0 and "overlay=1" not in page.url
