"""The pages on a server that requires a token (api.token): they ask for it instead of failing, keep it in
this browser, send it with every call (downloads too), and say so when the one they hold is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view, serving, watched_page

pytestmark = pytest.mark.browser

TOKEN = "browser-test-token-0123456789"


@pytest.fixture(scope="module")
def token_server(browser_atlas, served_worker) -> Iterator[str]:
    from attnlens.api import create_app
    from attnlens.config import APISettings

    settings, store = browser_atlas
    api = APISettings.model_validate({**settings.api.model_dump(), "token": TOKEN})
    guarded = settings.model_copy(update={"api": api})
    with serving(create_app(guarded, served_worker, store), "token-test-server") as url:
        yield url


def test_pages_ask_for_the_token_then_work_with_it(chromium, token_server):
    # The first loads are refused on purpose (the page learns that a token is needed from the 401s).
    with watched_page(chromium, token_server, expected_http_errors=("/api/",)) as page:
        sent: list[str | None] = []
        page.on("request", lambda r: "/api/health" in r.url and sent.append(r.headers.get("authorization")))
        open_view(page, "#/")
        form = page.locator("#token-form")
        form.wait_for()
        assert "This server needs a token" in form.inner_text()
        assert page.locator("#worker-status").inner_text() == "token needed"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "token_form.png"), full_page=True)

        page.fill("#api-token", "wrong-token-but-long-enough")
        with page.expect_navigation():
            page.click("#token-form button")
        page.wait_for_selector("#page[data-ready=true]")
        page.locator("#token-form", has_text="was refused").wait_for()

        page.fill("#api-token", TOKEN)
        with page.expect_navigation():
            page.click("#token-form button")
        page.wait_for_selector("#page[data-ready=true]")
        page.locator("#worker-status.state-ready").wait_for()
        assert page.locator("#token-form").count() == 0
        assert f"Bearer {TOKEN}" in sent  # the header, never the URL
        # Another page in the same browser needs no second prompt.
        open_view(page, "#/jobs")
        assert page.locator("#token-form").count() == 0
        # no error box (a failed job's own error text, which other tests leave in the atlas, is not one)
        assert page.locator(".error strong", has_text="Error:").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "token_accepted.png"), full_page=True)
        # Report downloads cannot be plain links (a link sends no header): they fetch with the token.
        with page.expect_download() as downloaded:
            page.evaluate(
                "async () => (await import('/js/api.js')).download('/api/jobs?limit=1', 'jobs.json')"
            )  # noqa: E501
        assert downloaded.value.suggested_filename == "jobs.json"
        assert isinstance(json.loads(Path(downloaded.value.path()).read_text(encoding="utf-8")), list)
