"""Every Plotly chart of the frontend is drawn with the one shared configuration (js/plots.js: PNG and SVG
downloads named after the chart), checked without a browser: each `Plotly.react(` call ends with a
`plotConfig(...)` argument."""

from __future__ import annotations

import re
from pathlib import Path

JS = Path(__file__).resolve().parents[1] / "frontend" / "static" / "js"


def _calls(source: str, name: str) -> list[str]:
    """The full argument text of every `name(` call (balanced parentheses)."""
    calls = []
    for match in re.finditer(re.escape(name) + r"\(", source):
        depth, i = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(source[i], 0)
            i += 1
        calls.append(source[match.end() : i - 1])
    return calls


def test_every_chart_uses_the_shared_plot_configuration():
    charts = 0
    for path in sorted(JS.rglob("*.js")):
        for args in _calls(path.read_text(), "Plotly.react"):
            charts += 1
            assert re.search(r"plotConfig\([^()]*(\([^()]*\)[^()]*)*\)\s*$", args.strip()), (
                f"{path.relative_to(JS)}: a chart drawn without plotConfig(...) as its last argument"
            )
    assert charts >= 8  # the pattern, dose curve, map, 3 predictor and 3 findings charts
