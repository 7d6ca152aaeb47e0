"""The Jobs page's "New job" form in Chromium: its fields come from the server (kinds and limits from
GET /api/jobs/kinds, tasks from GET /api/tasks, corpora from GET /api/corpora); a submitted job shows in the
list at once with its place in the queue and parameters, stored with the parameters the CLI would store; a
bad value comes back in the API's words beside the form, and queues nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view, serving, watched_page
from tests.conftest import JAVA_FIXTURES, JAVA_FIXTURES_CORPUS, copy_atlas

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def own_server(tiny_atlas, served_worker, tmp_path_factory) -> Iterator[tuple[str, Any, Any]]:
    """A server over a private copy of the tiny atlas (these tests queue jobs); (url, settings, store). Its
    worker runs no jobs, so what the form queues stays queued."""
    from attnlens.api import create_app
    from attnlens.store import open_store
    from attnlens.store.jobs import request_cancel

    settings = tiny_atlas[0]
    data = tmp_path_factory.mktemp("jobs-form") / "data"
    copy_atlas(settings.data_dir, data)
    mine = settings.model_copy(update={"data_dir": data})
    store = open_store(mine)
    for job_id in queued_ids(store):  # what other tests left queued in the shared atlas: out of the way
        request_cancel(store, job_id)
    with serving(create_app(mine, served_worker, store), "jobs-form-test-server") as url:
        yield url, mine, store


def queued_ids(store) -> set[int]:
    from attnlens.store.jobs import list_jobs

    return {j.id for j in list_jobs(store, states=["queued"], limit=1000)}


def test_the_form_queues_a_build_and_shows_it_at_once(chromium, own_server):
    from attnlens.contracts.job_parameters import build_parameters
    from attnlens.contracts.tasks import TASKS
    from attnlens.store.jobs import get_job

    url, settings, store = own_server
    with watched_page(chromium, url, expected_http_errors=("/api/jobs",)) as page:
        # A filter that hides queued jobs: the page lifts it when the form queues one.
        open_view(page, "#/jobs?state=succeeded")
        form = page.locator("#job-form")
        form.wait_for()
        assert page.locator("#job-kind").input_value() == "atlas_build"
        assert "attnlens atlas build" in page.locator("#job-kind-about").inner_text()
        per_task = page.locator("#job-field-per_task")
        assert (per_task.input_value(), per_task.get_attribute("max")) == ("50", "5000")  # from the API
        boxes = page.locator("#job-field-tasks input[type=checkbox]")
        assert boxes.count() == len(TASKS) and all(boxes.nth(i).is_checked() for i in range(len(TASKS)))

        # A bad value: the API's error text inline, beside the field too; nothing queued.
        before = queued_ids(store)
        page.select_option("#job-field-corpus", JAVA_FIXTURES_CORPUS)
        per_task.fill("0")
        page.click("#job-submit")
        error = page.locator("#job-form-error .error")
        error.wait_for()
        assert "per_task" in error.inner_text() and "greater than or equal to 1" in error.inner_text()
        field_error = page.locator(".job-field[data-field=per_task] .field-error")
        assert "greater than or equal to 1" in field_error.inner_text()
        assert per_task.get_attribute("aria-invalid") == "true"
        assert queued_ids(store) == before
        page.screenshot(path=str(SCREENSHOTS / "jobs_form_error.png"), full_page=True)

        # Fixed: two tasks, 4 a task. The job is in the list at once, next in the queue, with its parameters.
        per_task.fill("4")
        page.locator(".task-choices button", has_text="none").click()
        for task in ("identifiers", "eol"):
            page.locator(f"#job-field-tasks input[value={task}]").check()
        page.click("#job-submit")
        page.locator("#job-queued").wait_for()
        assert page.locator("#job-form-error .error").count() == 0
        assert page.locator(".field-error:not(:empty)").count() == 0
        job_id = int(page.locator("#job-queued").inner_text().split("#")[1].split()[0])
        block = page.locator(f"#job-list .job[data-job-id='{job_id}']")
        block.wait_for()
        assert block.get_attribute("data-state") == "queued"
        assert block.locator(".queue-place").inner_text() == "next in the queue"
        parameters = block.locator(".job-parameters").inner_text()
        assert "per_task 4" in parameters and "tasks identifiers, eol" in parameters, parameters
        assert page.locator("select[aria-label=state]").input_value() == ""  # the filter was lifted
        assert "state=succeeded" not in page.url
        expected = build_parameters(
            str(JAVA_FIXTURES), "identifiers,eol", 4, settings.mining.seed, settings.atlas.batch_size
        )
        assert get_job(store, job_id).parameters == expected  # what `attnlens atlas build` would store

        # Another kind: its own fields; the second job waits behind the first.
        page.select_option("#job-kind", "train_predictors")
        assert "kind=train_predictors" in page.url
        assert page.locator("#job-field-per_task").count() == 0
        assert page.locator("#job-field-tasks input:checked").count() == 0  # default: decided by the atlas
        assert page.locator("#job-field-model").input_value() == settings.model.name
        page.click("#job-submit")
        page.wait_for_function(
            "n => document.querySelectorAll('#job-list .job[data-state=queued]').length >= n", arg=2
        )
        second = page.locator("#job-list .job").first
        assert "train_predictors" in second.inner_text()
        assert second.locator(".queue-place").inner_text() == "place 2 in the queue"
        page.screenshot(path=str(SCREENSHOTS / "jobs_form_queued.png"), full_page=True)


def test_a_corpus_error_is_shown_beside_the_corpus(chromium, own_server):
    """A 400 (no field location) is shown in the API's words, and the corpus field is marked."""
    url, _settings, store = own_server
    with watched_page(chromium, url, expected_http_errors=("/api/jobs",)) as page:
        open_view(page, "#/jobs?kind=atlas_build")
        page.locator("#job-form").wait_for()
        before = queued_ids(store)
        # An option the server does not list: what a stale page or a hand-edited form would send.
        page.evaluate(
            """() => { const s = document.getElementById('job-field-corpus');
                       s.append(new Option('gone', 'gone')); s.value = 'gone'; }"""
        )
        page.click("#job-submit")
        page.locator("#job-form-error .error").wait_for()
        assert "unknown corpus" in page.locator("#job-form-error").inner_text()
        assert "unknown corpus" in page.locator(".job-field[data-field=corpus] .field-error").inner_text()
        assert queued_ids(store) == before
