"""The Findings page over the predicted atlas (tests/store/signal_atlas.py: a real clustering and both
predictor kinds trained by the real jobs) and a real random-rule ablation experiment: before any report it
says so calmly; its button queues a report, shows the job, and when the real report job (run here, in
process: the test server runs no jobs) succeeds, shows the five sections with the API's figures, links,
plots and downloads (slow: UMAP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view, serving, watched_page
from tests.conftest import JAVA_FIXTURES
from tests.store.signal_atlas import build_predicted_atlas

pytestmark = [pytest.mark.browser, pytest.mark.slow]

pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731 - dom.js pct(): one decimal
ci = lambda e: f"{pct(e['estimate'])} [{pct(e['low'])}, {pct(e['high'])}]"  # noqa: E731


@pytest.fixture(scope="module")
def findings_server(tiny_atlas, tmp_path_factory) -> Iterator[tuple[str, Any, Any, Any]]:
    """(url, settings, store, worker) of a server over a predicted atlas with one finished experiment."""
    from attnlens.api import create_app
    from attnlens.atlas.handlers import JOB_HANDLERS
    from attnlens.contracts.jobs import ABLATION_EXPERIMENT, experiment_parameters
    from attnlens.service.jobs import run_job_here
    from attnlens.service.local import LocalWorker
    from attnlens.store.jobs import enqueue_job

    settings, store = build_predicted_atlas(tiny_atlas[0], tmp_path_factory.mktemp("findings-page") / "data")
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    parameters = experiment_parameters("identifiers", ["random"], [1, 4, 16], 3, str(JAVA_FIXTURES), 0)
    job_id = enqueue_job(store, ABLATION_EXPERIMENT, parameters)
    done = run_job_here(settings, store, job_id, worker, JOB_HANDLERS[ABLATION_EXPERIMENT])
    assert done.state == "succeeded", done.error
    with serving(create_app(settings, worker, store), "findings-test-server") as url:
        yield url, settings, store, worker


def test_findings_page_before_and_after_a_report(chromium, findings_server):
    from attnlens.atlas.handlers import JOB_HANDLERS
    from attnlens.contracts.findings import FINDINGS_REPORT
    from attnlens.service.jobs import run_job_here

    url, settings, store, _worker = findings_server
    with watched_page(chromium, url, timeout_ms=30_000) as page:
        # Before any report: a calm notice saying how to make one; no error box, no downloads of nothing.
        open_view(page, "#/findings")
        notice = page.locator("#findings-status").inner_text()
        assert "No findings report has been made" in notice and "attnlens report" in notice
        assert page.locator(".error").count() == 0 and page.locator("#download-md").count() == 0
        assert page.locator("#findings-claims li").count() == 5
        assert page.locator("[data-nav=findings].active").count() == 1
        page.screenshot(path=str(SCREENSHOTS / "test_findings_page_before.png"), full_page=True)

        # The button queues a report (cheap settings) and shows its job; the real job runs here.
        page.uncheck("#gen-reconstruction")
        page.fill("#gen-stability", "2")
        page.click("#generate")
        block = page.wait_for_selector("#generate-status .job[data-state=queued]")
        job_id = int(block.get_attribute("data-job-id") or 0)
        assert page.is_disabled("#generate")
        assert (
            f"Report job #{job_id} is waiting for the worker" in page.locator("#findings-status").inner_text()
        )
        page.screenshot(path=str(SCREENSHOTS / "test_findings_page_queued.png"))
        job = run_job_here(settings, store, job_id, None, JOB_HANDLERS[FINDINGS_REPORT])
        assert job.kind == FINDINGS_REPORT and job.state == "succeeded", job.error
        assert job.parameters["stability_heads"] == 2 and job.parameters["reconstruction"] is False

        # When the job succeeds the page shows the report: the same figures as the API.
        page.wait_for_selector("#correctness-table")
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 2")
        body = page.request.get("/api/findings").json()
        assert body["job_id"] == job_id
        assert page.locator("#findings-status").is_hidden()  # ready: nothing to say beyond the report
        f = body["findings"]
        facts = page.locator("#findings-facts").inner_text()
        assert f["command"] in facts and f["machine"] in facts and f"report job #{job_id}" in facts
        assert "switched off" in page.locator("#reconstruction-reason").inner_text()
        assert (
            page.locator("#finding-reconstruction .claim")
            .inner_text()
            .endswith(body["claims"]["reconstruction"])
        )
        assert f["generalisation"]["reason"] in page.locator("#generalisation-reason").inner_text()
        assert f"#{f['recurrence']['clustering_id']}" in page.locator("#recurrence-facts").inner_text()
        assert page.locator("#stability-table tbody tr").count() == 2
        for row in f["correctness"]["rows"]:
            tr = page.locator(f"#correctness-table tr[data-predictor='{row['predictor_id']}']")
            assert tr.locator("td.accuracy").inner_text() == ci(row["accuracy"])
            assert (
                tr.locator("a.predictor-link").get_attribute("href") == f"#/predictor/{row['predictor_id']}"
            )
        assert page.locator("#dose-table tbody tr").count() == len(f["dose"]["points"]) == 3
        assert f"#{f['dose']['experiment_id']}" in page.locator("#finding-dose").inner_text()
        assert page.locator("#correctness-plot .bars, #correctness-plot .point").count() > 0
        assert page.locator("#dose-plot .scatterlayer .trace").count() == 1
        page.screenshot(path=str(SCREENSHOTS / "test_findings_page.png"), full_page=True)

        # Downloads: the Markdown and HTML of this report.
        for link, suffix, kind in (
            ("#download-md", "md", "text/markdown"),
            ("#download-html", "html", "text/html"),
        ):
            with page.expect_download() as info:
                page.click(link)
            assert info.value.suggested_filename == f"findings-{f['model']}.{suffix}"
            response = page.request.get(page.locator(link).get_attribute("href") or "")
            assert response.ok and response.headers["content-type"].startswith(kind)
            assert ci(f["correctness"]["rows"][0]["accuracy"]) in response.text()

        # A kind opens its predictor's page.
        first = f["correctness"]["rows"][0]
        page.click(f"#correctness-table tr[data-predictor='{first['predictor_id']}'] a.predictor-link")
        page.wait_for_selector("#predictor-accuracy")
        assert page.locator("#predictor-accuracy").inner_text() == ci(first["accuracy"])
