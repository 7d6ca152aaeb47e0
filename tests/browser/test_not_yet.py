""" "Not yet" is not an error: on an atlas without a map, the map page says what is queued (its place in the
queue), then follows the job while it runs, and draws the map when it is done, with no error box and no 404
in the console on the way. Before anything is queued it says how to make one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view, private_server, watched_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def mapless(tiny_atlas, served_worker, tmp_path_factory) -> Iterator[tuple[str, Any, Any]]:
    """A server over a copy of the tiny atlas, which has no map; (url, settings, store)."""
    data = tmp_path_factory.mktemp("mapless") / "data"
    with private_server(tiny_atlas[0], served_worker, data, "mapless-test-server") as served:
        yield served


def test_the_map_page_says_what_is_queued_then_draws_the_map(chromium, mapless):
    from attnlens.atlas.handlers import JOB_HANDLERS
    from attnlens.contracts.jobs import ATLAS_MAP
    from attnlens.service.jobs import run_job_here
    from attnlens.store.jobs import enqueue_job

    url, settings, store = mapless
    with watched_page(chromium, url, timeout_ms=60_000) as page:
        open_view(page, "#/map")
        notice = page.locator("#not-yet-atlas_map")
        assert "No cluster map for tiny-starcoder2 yet" in notice.inner_text()
        assert "attnlens atlas map" in notice.inner_text()

        blocker = enqueue_job(store, "atlas_build", {})  # another job ahead in the queue
        job_id = enqueue_job(store, ATLAS_MAP, {})
        page.reload()
        page.wait_for_selector("#page[data-ready=true]")
        text = notice.inner_text()
        assert f"Job #{job_id} making the cluster map is queued (place 2 in the queue)" in text, text
        assert page.locator(f"#not-yet-atlas_map .job[data-job-id='{job_id}']").count() == 1
        assert page.locator(".error").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "map_not_yet_queued.png"), full_page=True)

        with store.session() as s:  # the blocker goes away (cancelled), the map job runs
            from attnlens.store.models import Job

            s.get(Job, blocker).state = "cancelled"
        done = run_job_here(settings, store, job_id, None, JOB_HANDLERS[ATLAS_MAP])
        assert done.state == "succeeded", done.error
        page.wait_for_selector("#map-plot .main-svg")  # the page followed the job and drew the map
        assert page.locator("#not-yet-atlas_map").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "map_not_yet_done.png"), full_page=True)


def test_the_gallery_says_there_is_no_clustering_yet_without_a_404(chromium, mapless):
    url, _settings, store = mapless
    from sqlalchemy import select

    from attnlens.store.models import Inference

    with store.session() as s:
        first = s.scalar(select(Inference.id).order_by(Inference.id).limit(1))
    with watched_page(chromium, url) as page:  # a 404 in the console would fail the test
        open_view(page, f"#/inference/{first}?head=L1H2")
        page.wait_for_selector("#pattern-plot .main-svg")
        notice = page.locator("#cluster-slot #not-yet-atlas_cluster")
        assert "No clustering for tiny-starcoder2 yet" in notice.inner_text()
        assert page.locator("#cluster-slot .error").count() == 0


def test_the_head_page_says_there_is_no_clustering_yet_without_a_404(chromium, mapless):
    """The head page's clusters panel, before any clustering: the same notice as the gallery's, no 404."""
    url, _settings, _store = mapless
    with watched_page(chromium, url) as page:  # a 404 in the console would fail the test
        open_view(page, "#/head/L1H2")
        notice = page.locator("#head-clusters #not-yet-atlas_cluster")
        notice.wait_for()
        assert "No clustering for tiny-starcoder2 yet" in notice.inner_text()
        assert page.locator("#head-clusters .error").count() == 0
