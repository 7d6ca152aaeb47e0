"""A chart downloads as SVG and PNG from its toolbar (the gallery's full pattern; every chart shares the one
configuration, which tests/test_frontend_plots.py checks without a browser)."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import open_view

pytestmark = pytest.mark.browser


def test_the_pattern_downloads_as_svg_and_png(page, live_server):
    inference_id = httpx.get(f"{live_server}/api/inferences?limit=1").json()["items"][0]["id"]
    open_view(page, f"#/inference/{inference_id}?head=L0H1")
    page.wait_for_selector("#pattern-plot .main-svg")
    page.hover("#pattern-plot")
    with page.expect_download() as svg:
        page.click("#pattern-plot .modebar-btn[data-title='Download plot as SVG']")
    assert svg.value.suggested_filename.endswith(".svg") and "L0H1" in svg.value.suggested_filename
    text = open(svg.value.path(), encoding="utf-8").read()
    assert text.lstrip().startswith("<svg") and "<image" in text  # the heatmap, as an embedded raster
    with page.expect_download() as png:
        page.click("#pattern-plot .modebar-btn[data-title^='Download plot as a']")
    assert png.value.suggested_filename.endswith(".png")
    assert open(png.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
