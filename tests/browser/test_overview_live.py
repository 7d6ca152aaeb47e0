"""The overview follows a running build: its build card and counts refresh by themselves while a build runs,
and stop refreshing when it ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view, private_server, watched_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def own_atlas(tiny_atlas, served_worker, tmp_path_factory) -> Iterator[tuple[str, Any]]:
    data = tmp_path_factory.mktemp("overview-live") / "data"
    with private_server(tiny_atlas[0], served_worker, data, "live-server") as (url, _settings, store):
        yield url, store


def test_the_build_card_follows_a_running_build(chromium, own_atlas):
    from attnlens.store.base import utc_now
    from attnlens.store.jobs import enqueue_job
    from attnlens.store.models import Job

    url, store = own_atlas
    job_id = enqueue_job(store, "atlas_build", {"corpus": "somewhere", "tasks": ["identifiers"]})

    def update(**values: Any) -> None:
        with store.session() as session:
            job = session.get(Job, job_id)
            for name, value in values.items():
                setattr(job, name, value)

    update(state="running", started_at=utc_now(), progress_done=3, progress_total=10, message="mining")
    with watched_page(chromium, url) as page:
        open_view(page, "#/")
        card = page.locator("#build-card")
        assert card.get_attribute("data-state") == "running" and "3 / 10" in card.inner_text()
        assert "refresh every few seconds" in card.inner_text()
        update(progress_done=7, message="embedding")
        page.wait_for_function(
            "document.querySelector('#build-card').innerText.includes('7 / 10')", timeout=10_000
        )
        assert "embedding" in page.inner_text("#build-card")
        page.screenshot(path=str(SCREENSHOTS / "overview_live_build.png"), full_page=True)
        update(state="succeeded", finished_at=utc_now(), progress_done=10)
        page.wait_for_selector("#build-card[data-state=succeeded]", timeout=10_000)
        assert "refresh every few seconds" not in page.inner_text("#build-card")
