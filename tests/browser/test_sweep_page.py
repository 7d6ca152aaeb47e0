"""The ablation sweep on the Intervene page: queued from the page, followed while the worker's job runner runs
it, then shown as grid shading and a sortable table whose numbers are the API's, each row toggling its
head (or layer) for re-generation."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import SCREENSHOTS, open_view

pytestmark = pytest.mark.browser


def test_a_sweep_runs_from_the_page_and_shades_the_grid(page, live_server, browser_atlas, served_worker):
    from attnlens.atlas.handlers import JOB_HANDLERS
    from attnlens.contracts.jobs import HEAD_SWEEP
    from attnlens.service.jobs import run_job_here

    settings, store = browser_atlas
    items = httpx.get(f"{live_server}/api/inferences?limit=5&task=identifiers").json()["items"]
    inference_id = items[2]["id"]
    open_view(page, f"#/intervene/{inference_id}")
    assert page.locator("#sweep-table").count() == 0  # no sweep yet, and no error for it
    page.click("#sweep-run")
    page.wait_for_selector("#sweep-job .job[data-state=queued]")
    job_id = int(page.get_attribute("#sweep-job .job", "data-job-id"))

    done = run_job_here(settings, store, job_id, served_worker, JOB_HANDLERS[HEAD_SWEEP])
    assert done.state == "succeeded", done.error
    page.wait_for_selector("#sweep-table tbody tr")  # the page followed the job
    sweep = httpx.get(f"{live_server}/api/inferences/{inference_id}/sweeps/latest").json()

    # The table holds every head and layer (20 rows, fewer than the page's first 25), sorted by |Δp|.
    targets = page.locator("#sweep-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.target)")

    def place(row):  # ties in the page's order: by layer, a whole layer before its heads
        return row["layer"], -1 if row["head"] is None else row["head"]

    by_size = sorted(sweep["rows"], key=lambda r: (-abs(r["delta_p_expected"]), *place(r)))
    assert targets == [r["target"] for r in by_size] and len(targets) == 16 + 4
    summary = page.inner_text("#sweep-summary")
    assert f"{sweep['flipped']} of 20" in summary and "flip the first token" in summary
    # The grid shades exactly the heads whose removal changed p(expected).
    shaded = page.get_attribute("#page canvas.grid-canvas", "data-heat").split(",")
    moved = [r["target"] for r in sweep["rows"] if r["head"] is not None and r["delta_p_expected"] != 0]
    assert sorted(shaded) == sorted(moved)

    # A row toggles its head for re-generation; a layer row toggles all of that layer's heads.
    page.click(f"#sweep-table tr[data-target='{by_size[0]['target']}']")
    assert by_size[0]["target"] in page.inner_text("#ablated-list")
    page.click("#sweep-table tr[data-target='L3']")
    assert all(f"L3H{h}" in page.inner_text("#ablated-list") for h in range(4))

    # The KL metric: kept in the URL, the table re-sorted by it.
    page.select_option("#sweep-metric", "kl")
    assert "sweep=kl" in page.url
    page.click("#sweep-table th button[data-sort='kl']")  # ascending now (the second click on the metric)
    kls = page.locator("#sweep-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.target)")
    assert kls == [r["target"] for r in sorted(sweep["rows"], key=lambda r: (r["kl"], *place(r)))]
    page.screenshot(path=str(SCREENSHOTS / "intervene_sweep.png"), full_page=True)
