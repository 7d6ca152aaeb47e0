"""Deleting a finished job's result from the Jobs page: asked first, said in words, gone from the list; no
button on an unfinished job or on a build (its inferences are the atlas)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view, private_server, watched_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def own_atlas(tiny_atlas, served_worker, tmp_path_factory) -> Iterator[tuple[str, Any]]:
    data = tmp_path_factory.mktemp("jobs-delete") / "data"
    with private_server(tiny_atlas[0], served_worker, data, "jobs-delete-server") as (url, _settings, store):
        yield url, store


def test_a_finished_result_is_deleted_after_asking(chromium, own_atlas):
    from attnlens.store.base import utc_now
    from attnlens.store.jobs import enqueue_job
    from attnlens.store.models import Job

    url, store = own_atlas
    sweep = enqueue_job(store, "head_sweep", {"inference_id": 1, "model": "tiny-starcoder2"})
    waiting = enqueue_job(store, "atlas_map", {})
    build = enqueue_job(store, "atlas_build", {"corpus": "c"})
    with store.session() as session:
        for job_id in (sweep, build):
            job = session.get(Job, job_id)
            job.state, job.finished_at, job.result = "succeeded", utc_now(), {"rows": []}
    with watched_page(chromium, url) as page:
        open_view(page, "#/jobs")
        block = page.locator(f".job[data-job-id='{sweep}']")
        assert page.locator(f".job[data-job-id='{waiting}'] .delete-result").count() == 0
        assert page.locator(f".job[data-job-id='{build}'] .delete-result").count() == 0
        asked: list[str] = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        block.locator(".delete-result").click()
        assert asked and f"job #{sweep}" in asked[0]
        assert page.locator(f".job[data-job-id='{sweep}']").count() == 1  # dismissed: nothing happened
        page.once("dialog", lambda dialog: dialog.accept())
        block.locator(".delete-result").click()
        page.wait_for_selector("#deleted-note .notice")
        assert page.inner_text("#deleted-note") == f"Deleted job #{sweep} and its result."
        page.wait_for_function(f"!document.querySelector(\".job[data-job-id='{sweep}']\")")
        page.screenshot(path=str(SCREENSHOTS / "jobs_deleted.png"), full_page=True)
    with store.session() as session:
        assert session.get(Job, sweep) is None and session.get(Job, waiting) is not None
