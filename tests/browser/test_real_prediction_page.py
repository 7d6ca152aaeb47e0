"""The paste page with a real prediction: a server over the predicted atlas (tests/store/signal_atlas.py:
real clustering and both predictor kinds trained by the real jobs); pasted code gets a probability, and the
page shows it with the accuracy, interval and chance of the predictor that gave it, and the heads driving
it with their clusters (slow: UMAP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import VIEWPORT, open_view, serving
from tests.store.signal_atlas import CODE, build_predicted_atlas

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def predicted_server(tiny_atlas, tmp_path_factory) -> Iterator[str]:
    from attnlens.api import create_app
    from attnlens.service.local import LocalWorker

    settings, store = build_predicted_atlas(tiny_atlas[0], tmp_path_factory.mktemp("predicted") / "data")
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    with serving(create_app(settings, worker, store), "predicted-test-server") as url:
        yield url


def test_paste_shows_a_real_probability_with_its_predictors_measured_accuracy(chromium, predicted_server):
    """A real probability with the accuracy, interval and chance its predictor measured on atlas windows,
    inside a notice that this accuracy does not apply to the paste (its prompt is not a window's length)."""
    context = chromium.new_context(viewport=VIEWPORT, base_url=predicted_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(30_000)
    try:
        # What the server answers for this paste (stored once; the page's own run finds the same row).
        expected = page.request.post(
            "/api/analyze", data={"code": CODE, "hole": {"cursor": 0, "task": "identifiers"}}
        ).json()
        prediction = expected["prediction"]
        assert prediction is not None, expected["prediction_unavailable"]
        open_view(page, "#/paste")
        page.fill("#code", CODE)
        page.evaluate(
            "() => { const t = document.querySelector('#code'); t.focus(); t.setSelectionRange(0, 0); }"
        )
        page.select_option("#task", "identifiers")
        page.click("#analyze")
        page.wait_for_selector("#prediction")
        shown = page.locator("#prediction").inner_text()
        pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731 - dom.js pct(): one decimal
        predictor = prediction["predictor"]
        assert f"{pct(prediction['probability_correct'])} likely correct" in shown
        # The paste's prompt is not an atlas window's length, so its measured accuracy does not apply: the
        # page says so and why, and shows the accuracy only as what was measured on atlas windows.
        assert prediction["applies"] is False
        notice = page.locator("#prediction-not-applicable").inner_text()
        assert prediction["applicability"] in notice
        assert f"measured on atlas windows: {pct(predictor['accuracy'])}" in notice
        assert f"measured accuracy {pct(predictor['accuracy'])}" not in shown
        assert page.locator("#prediction-applicability").count() == 0
        assert f"[{pct(predictor['accuracy_low'])}, {pct(predictor['accuracy_high'])}]" in shown
        assert f"chance {pct(predictor['chance'])}" in shown
        # It beat chance, so no "indistinguishable from chance" notice.
        assert predictor["accuracy_low"] > predictor["chance"]
        assert page.locator("#prediction-uninformative").count() == 0
        tops = page.locator("#top-heads li").all_inner_texts()
        assert len(tops) == len(prediction["top_heads"])
        first = prediction["top_heads"][0]
        assert tops[0].startswith(first["name"]) and f"cluster {first['cluster']}" in tops[0].replace(
            "cluster: noise", "cluster -1"
        )
        page.screenshot(path="test-output/screenshots/test_paste_real_prediction.png", full_page=True)
        assert not errors, errors
    finally:
        context.close()


def test_predictor_page_sets_attention_beside_the_models_confidence(chromium, predicted_server):
    """The predictor page's baseline panel shows, per row set, the accuracies the training job measured
    (attention, the confidence baseline, both together) and says in words what attention adds."""
    context = chromium.new_context(viewport=VIEWPORT, base_url=predicted_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(30_000)
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731 - dom.js pct(): one decimal
    try:
        listed = page.request.get("/api/predictors").json()
        chosen = next(p for p in listed if p["task"] == "identifiers" and p["kind"] == "clusters_catboost")
        body = page.request.get(f"/api/predictors/{chosen['id']}").json()
        baselines = body["baselines"]
        open_view(page, f"#/predictor/{chosen['id']}")
        page.wait_for_selector("#baseline-table")
        for key in ("stratified", "balanced", "exact_holes"):
            row = page.locator(f"#baseline-table tr[data-set='{key}']").inner_text()
            figures = baselines[key]
            assert figures["reason"] is None
            for part in ("attention", "confidence", "attention_plus_confidence"):
                accuracy = figures[part]["accuracy"]
                assert f"{pct(accuracy['estimate'])} [{pct(accuracy['low'])}, {pct(accuracy['high'])}]" in row
        verdict = page.locator("#baseline-verdict").inner_text()
        gain = baselines["stratified"]["accuracy_gain"]
        expected = "adds nothing measurable" if gain["low"] <= 0 <= gain["high"] else "Attention adds"
        assert expected in verdict and pct(abs(gain["estimate"])) in verdict
        page.locator("#predictor-baselines").screenshot(
            path="test-output/screenshots/test_predictor_baselines.png"
        )
        assert not errors, errors
    finally:
        context.close()
