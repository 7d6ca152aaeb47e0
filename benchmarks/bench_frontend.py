"""Frontend speed in Chromium (headless, software rendering): the head grid at StarCoder2-15B's 40 x 48 heads,
the heads scatter (#/heads) at 1,920 heads, and the cluster map's WebGL scatter at many points, all from
synthetic payloads (no server needed: the page is served from frontend/static by a throwaway static file
server, and the heads page's API answers are made up in the browser).

    .venv/bin/python benchmarks/bench_frontend.py --points 200000
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

STATIC = Path(__file__).resolve().parents[1] / "frontend" / "static"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]

GRID_JS = """async ([L, H, S, repeats]) => {
  const { HeadGrid } = await import('/js/grid.js');
  const bytes = new Uint8Array(L * H * S * S);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  let b = '';
  for (let i = 0; i < bytes.length; i += 8192) b += String.fromCharCode(...bytes.subarray(i, i + 8192));
  const heads = [];
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) heads.push({
    id: 1, name: `L${l}H${h}`, layer: l, head: h,
    entropy: 0, diagonal_mass: 0, previous_token_mass: 0, first_token_mass: 0, local_mass: 0,
  });
  const payload = btoa(b);
  const root = document.body; root.replaceChildren();
  const t0 = performance.now();
  const grid = new HeadGrid({ n_layers: L, n_heads: H, thumbnail_size: S, thumbnails: payload, heads });
  root.append(grid.element); grid.layout();
  const build = performance.now() - t0;
  const t1 = performance.now();
  for (let i = 0; i < repeats; i++) { grid.setSelected(`L${i % L}H${i % H}`); }
  const redraw = (performance.now() - t1) / repeats;
  return { build_ms: build, redraw_ms: redraw, cell_px: grid.cell, payload_bytes: payload.length };
}"""

MAP_JS = """async (n) => {
  const x = new Array(n), y = new Array(n), c = new Array(n);
  for (let i = 0; i < n; i++) {
    const a = i * 2.399963, r = Math.sqrt(i);
    x[i] = r * Math.cos(a); y[i] = r * Math.sin(a); c[i] = i % 30;
  }
  const div = document.createElement('div'); div.style.width = '1000px'; div.style.height = '600px';
  document.body.replaceChildren(div);
  const t0 = performance.now();
  const marker = { size: 4, color: c, colorscale: 'Viridis' };
  await Plotly.newPlot(div, [{ type: 'scattergl', mode: 'markers', x, y, marker }], { hovermode: 'closest' });
  const draw = performance.now() - t0;
  const t1 = performance.now();
  await Plotly.relayout(div, { 'xaxis.range': [-100, 100], 'yaxis.range': [-100, 100] });
  return { first_draw_ms: draw, zoom_ms: performance.now() - t1 };
}"""


# The app's own map page path: `traces()` of js/map_traces.js on a map payload of n points (14 tasks, 30 x 9
# heads, clusters, correctness), every point shown (no filter), then Plotly's first draw, per colouring.
APP_MAP_JS = """async ([n, colour]) => {
  const { colourFrame, pointLabels, traces } = await import('/js/map_traces.js');
  const TASKS = ['identifiers', 'eol', 'string_literals', 'mathematical_operators', 'boolean_literals',
    'closing_bracket', 'opening_bracket', 'boolean_operators', 'comparison_operators', 'assignment_operators',
    'numeric_literals', 'method_names', 'keywords', 'noise'];
  const points = {};
  const columns = ['x', 'y', 'id', 'layer', 'head', 'task', 'correct', 'cluster', 'inference'];
  for (const k of columns) points[k] = new Array(n);
  for (let i = 0; i < n; i++) {
    const a = i * 2.399963, r = Math.sqrt(i);
    points.x[i] = r * Math.cos(a); points.y[i] = r * Math.sin(a); points.id[i] = i + 1;
    points.layer[i] = i % 30; points.head[i] = (i >> 5) % 9; points.task[i] = TASKS[i % 14];
    points.correct[i] = i % 7 === 0 ? null : i % 9 < 5; points.cluster[i] = (i % 13) - 1;
    points.inference[i] = Math.floor(i / 270) + 1;
  }
  const div = document.createElement('div'); div.style.width = '1000px'; div.style.height = '600px';
  document.body.replaceChildren(div);
  const t0 = performance.now();
  const rows = Array.from({ length: n }, (_, i) => i);
  const frame = colourFrame(points);
  const data = traces(points, colour, { rows, labels: pointLabels(points), frame }).traces;
  const built = performance.now() - t0;
  await Plotly.newPlot(div, data, { hovermode: 'closest' });
  const total = performance.now() - t0;
  Plotly.purge(div);
  return { traces_ms: built, first_draw_ms: total };
}"""


SCORES = [
    "previous_token_mass", "diagonal_mass", "first_token_mass", "local_mass", "entropy",
    "duplicate_token_mass", "induction_mass", "bracket_mass", "same_identifier_mass", "declaration_mass",
    "callee_mass",
]  # fmt: skip


def heads_payloads(layers: int, heads: int) -> dict[str, object]:
    """Synthetic answers of GET /api/heads/scores and GET /api/heads for a layers x heads model."""
    rng = __import__("random").Random(0)
    scores = [
        {"name": s, "label": s.split("_")[0], "title": s, "formula": s, "threshold": 0.5, "relational": i > 4}
        for i, s in enumerate(SCORES)
    ]
    overview = {
        "model": "synthetic", "n_layers": layers, "n_heads": heads, "n_inferences": 2500,
        "n_inferences_unscored": 0, "typical": dict.fromkeys(SCORES, 0.05),
        "heads": [
            {"name": f"L{layer}H{head}", "layer": layer, "head": head, "n_patterns": 2500,
             "medians": {s: rng.random() for s in SCORES},
             "labels": [x["label"] for x in rng.sample(scores, rng.randint(0, 2))],
             "importance": rng.random() if rng.random() < 0.2 else None, "importance_task": "identifiers"}
            for layer in range(layers) for head in range(heads)
        ],
    }  # fmt: skip
    return {"/api/heads/scores": scores, "/api/heads": overview}


def heads_scatter(page, base: str, layers: int, heads: int) -> dict[str, float]:
    """The heads page (#/heads) over a synthetic layers x heads answer: from navigation start to the drawn
    plot (page, plotly.js and all), and one change of the x axis (a Plotly.react of every point), in ms."""
    payloads = heads_payloads(layers, heads)

    def answer(route) -> None:
        path = route.request.url.split("?")[0].removeprefix(base)
        body = payloads.get(path, {"worker": {"state": "ready"}} if path == "/api/health" else None)
        if body is None:
            route.fulfill(status=404, content_type="application/json", body='{"ok": false}')
        else:
            route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("**/api/**", answer)
    page.goto("about:blank")  # a fresh document: the grid benchmark replaced the page's body
    page.goto(f"{base}/index.html#/heads")
    page.wait_for_selector("#heads-plot .main-svg")
    page.wait_for_function("document.getElementById('page').dataset.ready === 'true'")
    # From navigation start: loading the page and plotly.js, fetching the answers, drawing every head.
    drawn = page.evaluate("performance.now()")
    start = page.evaluate("performance.now()")
    page.select_option("#heads-x", SCORES[6])
    page.wait_for_function(
        "(t) => document.getElementById('heads-plot').layout.xaxis.title.text.startsWith(t)", arg=SCORES[6]
    )
    changed = page.evaluate("performance.now()") - start
    points = page.evaluate("document.getElementById('heads-plot').data.reduce((n, t) => n + t.x.length, 0)")
    page.unroute("**/api/**")
    return {"first_draw_ms": drawn, "axis_change_ms": changed, "points": points}


def serve_static() -> tuple[http.server.ThreadingHTTPServer, str]:
    import plotly

    vendor = Path(plotly.__file__).parent / "package_data"

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            if path.startswith("/vendor/plotly.min.js"):
                return str(vendor / "plotly.min.js")
            return super().translate_path(path)

        def log_message(self, *args) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(STATIC))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--app-map-points", type=int, default=100_000, help="points for the app's map page path (0: skip)"
    )
    args = parser.parse_args()
    server, base = serve_static()
    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/index.html#/none")
        page.wait_for_function("window.Plotly !== undefined")
        for layers, heads in ((30, 9), (30, 24), (40, 48)):
            results[f"grid_{layers}x{heads}"] = page.evaluate(GRID_JS, [layers, heads, 32, args.repeats])
        for layers, heads in ((30, 9), (40, 48)):
            results[f"heads_scatter_{layers}x{heads}"] = heads_scatter(page, base, layers, heads)
        results[f"map_{args.points}_points"] = page.evaluate(MAP_JS, args.points)
        if args.app_map_points:
            for colour in ("layer", "task", "correct"):
                key = f"app_map_{args.app_map_points}_points_{colour}"
                results[key] = page.evaluate(APP_MAP_JS, [args.app_map_points, colour])
        browser.close()
    server.shutdown()
    print(json.dumps(results, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
