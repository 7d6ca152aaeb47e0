r"""Screenshots of every page for the docs, from a running server (not a test):

    .venv/bin/python -m tests.browser.take_screenshots http://127.0.0.1:8765 docs/screenshots \
        --inference 47 --job 6

Each PNG is one 1280-wide viewport (kept under 300 KB for the README)."""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM_ARGS
from tests.conftest import CHROMIUM

PASTED = """public class Counter {
    private int count;

    public void increment() {
        count += 1;
    }

    public boolean isEmpty() {
        return count == 0;
    }
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--inference", type=int, required=True)
    parser.add_argument("--job", type=int, help="a finished ablation_experiment job for the dose curve")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860}, base_url=args.base_url)
        page.set_default_timeout(60_000)

        def shot(route: str, name: str, then=None) -> None:
            page.goto(f"/{route}")
            page.wait_for_selector("#page[data-ready=true]")
            if then:
                then()
            page.wait_for_timeout(600)
            page.screenshot(path=str(args.out / f"{name}.png"))

        shot("#/", "overview", lambda: page.wait_for_selector("#task-table"))
        shot(
            f"#/inference/{args.inference}?head=L1H2",
            "gallery",
            lambda: page.evaluate("document.querySelector('#head-detail').scrollIntoView()"),
        )

        def paste() -> None:
            page.fill("#code", PASTED)
            start = PASTED.index("count == 0")
            page.evaluate(
                "([s, e]) => { const t = document.querySelector('#code');"
                " t.focus(); t.setSelectionRange(s, e); }",
                [start, start + 5],
            )
            page.click("#analyze")
            page.wait_for_selector("#analyze-result dl")
            page.evaluate("document.querySelector('#analyze-result').scrollIntoView()")

        shot("#/paste", "paste", paste)

        def regenerate() -> None:
            page.click("#regenerate")
            page.wait_for_selector("#ablation-result")

        heads = "L0H1,L1H0,L2H0,L2H1,L2H2,L2H3"
        shot(
            f"#/intervene/{args.inference}?heads={heads}" + (f"&job={args.job}" if args.job else ""),
            "intervene",
            regenerate,
        )
        if args.job:
            shot(
                f"#/intervene/{args.inference}?job={args.job}",
                "experiment",
                lambda: (
                    page.wait_for_selector("#dose-curve .main-svg"),
                    page.evaluate("document.querySelector('#experiment').scrollIntoView()"),
                ),
            )

        def hover() -> None:
            page.wait_for_selector("#map-plot .main-svg")
            x, y = (
                page.evaluate("""() => { const gd = document.getElementById('map-plot'); const t = gd.data[0];
                const L = gd._fullLayout; const b = gd.getBoundingClientRect();
                return [b.left + L.margin.l + L.xaxis.l2p(t.x[5]),
                        b.top + L.margin.t + L.yaxis.l2p(t.y[5])]; }""")
            )
            page.mouse.move(x, y)
            page.wait_for_selector("#map-preview canvas")

        shot("#/map?color=layer", "map", hover)
        shot("#/jobs", "jobs")
        browser.close()


if __name__ == "__main__":
    main()
