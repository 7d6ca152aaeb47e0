"""The families page (#/families) and the cluster map coloured by family, in Chromium, over a private copy of
the browser atlas (which has a map): before any run the page says so and queues the job with its button;
when the job (run here, with small-data settings) finishes, the page lists every family with its example
thumbnails, labels, layer bars and correctness; a family's map link colours the map by family with that one
picked out. No console error anywhere (`watched_page`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view, private_server, watched_page

pytestmark = pytest.mark.browser

FAMILY_ANALYSIS = {
    "family_fit_sample": 120, "family_min_cluster_size": 8, "hdbscan_min_samples": 3, "umap_neighbors": 8,
    "umap_components": 4, "knn_k": 5, "family_examples": 4,
}  # fmt: skip


@pytest.fixture(scope="module")
def served(browser_atlas, served_worker, tmp_path_factory) -> Iterator[tuple[str, Any, Any]]:
    """A server over a copy of the browser atlas (a clustering, a map, no families): url, settings, store."""
    settings, _store = browser_atlas
    data = tmp_path_factory.mktemp("families") / "data"
    with private_server(settings, served_worker, data, "families-test-server") as server:
        yield server


def run_families(settings, store, job_id: int | None = None) -> None:
    """Run the pattern_families job `job_id` (default: a new one) here, with small-data settings."""
    from attnlens.atlas.handlers import JOB_HANDLERS
    from attnlens.contracts.jobs import PATTERN_FAMILIES
    from attnlens.service.jobs import run_job_here
    from attnlens.store.jobs import enqueue_job

    tuned = settings.model_copy(update={"analysis": settings.analysis.model_copy(update=FAMILY_ANALYSIS)})
    job_id = job_id if job_id is not None else enqueue_job(store, PATTERN_FAMILIES, {})
    done = run_job_here(tuned, store, job_id, None, JOB_HANDLERS[PATTERN_FAMILIES])
    assert done.state == "succeeded", done.error


def plot(page, expression: str) -> Any:
    return page.evaluate(f"() => {{ const gd = document.getElementById('map-plot'); return {expression}; }}")


def test_the_page_queues_the_job_then_lists_the_families(chromium, served):
    from sqlalchemy import select

    from attnlens.contracts.jobs import PATTERN_FAMILIES
    from attnlens.store.models import Job

    url, settings, store = served
    with watched_page(chromium, url, timeout_ms=120_000) as page:
        open_view(page, "#/families")
        assert page.locator("[data-nav=families].active").count() == 1
        notice = page.locator("#no-families")
        assert "No pattern families of tiny-starcoder2 yet" in notice.inner_text()
        page.click("#queue-families")
        page.wait_for_selector("#families-job .job[data-state=queued]")
        with store.session() as session:
            job_id = session.scalar(select(Job.id).where(Job.kind == PATTERN_FAMILIES))
        assert page.locator(f"#families-job .job[data-job-id='{job_id}']").count() == 1

        run_families(settings, store, job_id)
        page.wait_for_selector("#families .family")  # the page followed the job and drew the families

        body = page.request.get("/api/families").json()
        assert body["run"]["n_families"] >= 2
        cards = page.locator("#families .family")
        assert cards.count() == body["run"]["n_families"]
        for k, family in enumerate(body["families"]):
            card = cards.nth(k)
            assert card.get_attribute("data-label") == str(family["label"])
            assert (
                card.locator(".family-example canvas.thumb").count()
                == min(3, len(family["example_ids"]))
                >= 1
            )
            hrefs = [a.get_attribute("href") for a in card.locator(".family-example").all()]
            assert hrefs == [f"#/pattern/{i}" for i in family["example_ids"][:3]]
            assert card.locator(".layer-strip .layer-bar").count() >= 1
            assert card.locator(".family-labels li").count() == len(family["labels"])
            assert (
                card.locator(".map-link").get_attribute("href")
                == f"#/map?color=family&family={family['label']}"
            )
        first = cards.first.inner_text()
        assert f"{body['families'][0]['size']} patterns" in first and "first token right" in first
        assert "atlas first-token correctness" in page.locator("#families-facts").inner_text()
        assert page.locator(".error").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "families.png"), full_page=True)

        open_view(page, "#/families/0")
        page.wait_for_selector("#family-0")
        examples = page.locator("#family-0 .family-example canvas.thumb")
        assert examples.count() == len(body["families"][0]["example_ids"])
        scores = page.locator("#family-scores tbody tr")
        assert scores.count() == len(body["families"][0]["scores"])
        labelled = [s["name"] for s in body["families"][0]["scores"] if s["labelled"]]
        assert page.locator("#family-scores tr.labelled").count() == len(labelled)
        # A note about the family is kept with its run's id (a label means nothing in another run).
        page.locator("#notes-panel #user-notes").wait_for()
        page.fill("#note-form input[name=label]", "sink-like")
        page.click("#note-form button[type=submit]")
        page.locator("#user-notes li").first.wait_for()
        (note,) = page.request.get("/api/notes?kind=family&target=0").json()
        assert (note["label"], note["scope_id"]) == ("sink-like", body["run"]["id"])
        page.screenshot(path=str(SCREENSHOTS / "family_detail.png"), full_page=True)


def test_the_map_colours_by_family_and_picks_one_out(chromium, served):
    from attnlens.store.families import latest_family_run

    url, settings, store = served
    if latest_family_run(store, settings.model.name) is None:  # run alone, without the test above
        run_families(settings, store)
    with watched_page(chromium, url, timeout_ms=60_000) as page:
        points = page.request.get("/api/families/points").json()
        assert points["run_id"] is not None
        in_family_0 = sum(1 for f in points["family"] if f == 0)
        open_view(page, "#/families")
        page.locator("#family-0 .map-link").click()
        page.wait_for_selector("#map-plot .main-svg")
        page.wait_for_function("() => document.getElementById('map-plot').data?.length === 2")
        assert page.locator("#map-colour").input_value() == "family"
        assert "Family 0 picked out" in page.locator("#map-family-note").inner_text()
        names = plot(page, "gd.data.map((t) => t.name)")
        assert names[1] == f"family 0 ({in_family_0})"
        assert plot(page, "gd.data[0].x.length + gd.data[1].x.length") == len(points["ids"])
        page.screenshot(path=str(SCREENSHOTS / "map_family_picked.png"), full_page=True)

        page.locator("#map-all-families").click()
        page.wait_for_function("() => document.getElementById('map-plot')?.data?.[1]?.marker?.colorscale")
        coloured = plot(page, "gd.data[1].marker.color")
        assert sorted(coloured) == sorted(f for f in points["family"] if f is not None and f >= 0)
        assert plot(page, "gd.data[0].name").startswith("noise or no family")
        page.screenshot(path=str(SCREENSHOTS / "map_families.png"), full_page=True)
        page.select_option("#map-colour", "layer")
        page.wait_for_function("() => document.getElementById('map-family-note').hidden")
