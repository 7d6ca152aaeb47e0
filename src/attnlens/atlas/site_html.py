"""The building blocks of the snapshot's pages (`attnlens export-site`): file names, formatting, the
Viridis thumbnails as PNG data URIs, the stylesheet and the page frame. Every database string goes through
`e` (html.escape)."""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from attnlens.atlas.site_pages import Overview

CSS_FILE, INDEX_FILE, MAP_FILE, HEADS_FILE, PLOTLY_FILE = (
    "site.css", "index.html", "map.html", "heads.html", "plotly.min.js"
)  # fmt: skip
MAX_CONTEXT = 1600  # characters of code shown on each side of the hole (as the app's gallery)
STAT_LABELS = {
    "entropy": ("entropy", "mean row entropy over log(row length): 0 = one key, 1 = uniform"),
    "diagonal_mass": ("diagonal", "attention on the query's own token"),
    "previous_token_mass": ("previous token", "attention on the token just before"),
    "first_token_mass": ("first token", "attention on token 0 (the sink column)"),
    "local_mass": ("local", "attention within the last 8 tokens"),
}
# Okabe-Ito (colour-blind safe), as the app's categories; past 8 tasks the marker shape changes.
CATEGORICAL = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
SYMBOLS = ("circle", "square", "diamond", "cross")
# plotly.colors.sequential.Viridis: ten stops of matplotlib's viridis.
VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
           "#b5de2b", "#fde725")  # fmt: skip
GRID_CELL_PX = 36
TOP_HEADS = 5  # heads per task in "the heads that matter" (as the app's overview)

e = html.escape


def inference_file(inference_id: int) -> str:
    return f"inference-{inference_id}.html"


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def verdict(value: bool | None) -> str:
    if value is None:
        return '<span class="muted">–</span>'
    return '<span class="right">right</span>' if value else '<span class="wrong">wrong</span>'


def visible(text: str | None) -> str:
    """A hole's text with its white space shown (· space, → tab, ↵ line break; ∅ nothing), escaped."""
    if not text:
        return "∅"
    lines = text.replace("\r\n", "\n").split("\n")
    return e("↵\n".join(line.replace("\t", "→").replace(" ", "·") for line in lines))


# --- thumbnails as PNG ---------------------------------------------------------------------------------


def palette() -> bytes:
    stops = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in VIRIDIS], dtype=np.float64)
    t = np.linspace(0, len(stops) - 1, 256)
    low = np.minimum(np.floor(t).astype(int), len(stops) - 2)
    f = (t - low)[:, None]
    return bytes(np.round(stops[low] * (1 - f) + stops[low + 1] * f).astype(np.uint8).tobytes())


PALETTE = palette()


def png(image: np.ndarray) -> bytes:
    """A (height, width) uint8 image as an indexed PNG in the Viridis palette (0 dark purple, 255 yellow)."""
    height, width = image.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(image, dtype=np.uint8))
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return b"".join(
        [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"PLTE", PALETTE),
         chunk(b"IDAT", zlib.compress(raw, 9)), chunk(b"IEND", b"")]
    )  # fmt: skip


def png_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png(image)).decode("ascii")


# --- the page frame ------------------------------------------------------------------------------------

CSS = """
:root { --bg: #f6f7f9; --panel: #fff; --ink: #1d2330; --muted: #5f6b7a; --line: #dde1e7;
  --accent: #0072b2; --right: #0072b2; --wrong: #d55e00;
  --mono: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  --sans: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.45 var(--sans); }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
h1 { font-size: 20px; margin: 4px 0 10px; font-weight: 600; }
h2 { font-size: 15px; margin: 0 0 8px; font-weight: 600; }
h3 { font-size: 13px; margin: 0 0 6px; font-weight: 600; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
code, pre, .path { font-family: var(--mono); font-size: 12.5px; }
.muted { color: var(--muted); } .small { font-size: 12px; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.right { color: var(--right); font-weight: 600; } .wrong { color: var(--wrong); font-weight: 600; }
header.top { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 20px; padding: 8px 20px;
  background: #1d2330; color: #e8ebf0; }
header.top a { color: #c9d3e0; } header.top .brand { font-weight: 700; color: #fff; }
header.top nav { display: flex; gap: 14px; }
header.top nav a.active { color: #fff; border-bottom: 2px solid #56b4e9; }
header.top .stamp { margin-left: auto; font: 12px var(--mono); color: #c9d3e0; }
.snapshot { background: #fff6e5; border-bottom: 1px solid #f0d9a8; padding: 6px 20px; font-size: 13px; }
main { padding: 14px 20px 40px; max-width: 1500px; margin: 0 auto; }
.panel, .card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
  padding: 12px 14px; margin-bottom: 14px; min-width: 0; overflow-x: auto; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px;
  margin-bottom: 14px; }
.card { margin: 0; } .card p { margin: 4px 0; } .big { font-size: 18px; font-weight: 600; }
.notice { background: #fff6e5; border: 1px solid #f0d9a8; border-radius: 4px; padding: 8px 10px; }
dl.counts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 12px; margin: 0; }
dl.counts dt { color: var(--muted); } dl.counts dd { margin: 0; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; } table.data { width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td code { white-space: pre; } td.path { max-width: 320px; overflow-wrap: anywhere; }
td.above-chance, tr.above-chance td.acc { font-weight: 600; }
tr.not-above td { color: var(--muted); }
.bar { display: inline-block; width: 120px; height: 8px; background: #e7ebf0; border-radius: 4px;
  vertical-align: middle; position: relative; overflow: hidden; }
.bar > span { position: absolute; left: 0; top: 0; bottom: 0; background: var(--accent); }
.facts { display: flex; flex-wrap: wrap; gap: 6px 16px; margin-bottom: 10px; color: var(--muted); }
.source-pasted { color: #8a4b00; font-weight: 600; }
pre.code { position: relative; background: #fbfbfc; border: 1px solid var(--line); border-radius: 4px;
  padding: 10px; margin: 0; max-height: 340px; overflow: auto; white-space: pre; line-height: 1.4; }
.hole { outline: 2px solid #e69f00; border-radius: 2px; }
.hole .expected { background: #dcecf7; color: #004f7c; text-decoration: line-through;
  text-decoration-color: rgba(0,79,124,.35); }
.hole .completion { background: #fde9c9; color: #7a4a00; font-weight: 600; }
.hole .sep { color: #e69f00; font-weight: 700; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 6px; font-size: 12px; color: var(--muted); }
.key::before { content: ""; display: inline-block; width: 12px; height: 12px; margin-right: 5px;
  vertical-align: -2px; border-radius: 2px; }
.key-expected::before { background: #dcecf7; } .key-completion::before { background: #fde9c9; }
table.grid td, table.grid th { border: 0; padding: 1px; text-align: center; font-size: 11px; }
table.grid img { display: block; width: 36px; height: 36px; image-rendering: pixelated; }
table.grid th.layer { text-align: right; padding-right: 6px; }
.viridis { display: inline-block; width: 120px; height: 10px; vertical-align: middle;
  background: linear-gradient(to right, VIRIDIS_STOPS); }
dl.defs { margin: 6px 0 12px; color: var(--muted); } th.num { text-align: right; }
details summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
.pager { display: flex; gap: 16px; margin: 4px 0 10px; }
""".replace("VIRIDIS_STOPS", ", ".join(VIRIDIS))

SNAPSHOT_NOTE = (
    "A static snapshot of an atlas, for sharing: no search, no ablation, no full patterns (they need the "
    "model: open the live app with <code>attnlens serve</code>). Numbers are as stored when it was exported."
)


def page(o: Overview, title: str, active: str, body: str, head: str = "") -> str:
    nav = [("index", INDEX_FILE, "Overview"), ("map", MAP_FILE, "Map")]
    if o.heads_page:
        nav.append(("heads", HEADS_FILE, "Heads"))
    links = " ".join(
        f'<a href="{href}"{" class=active" if key == active else ""}>{label}</a>' for key, href, label in nav
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · {e(o.model)} · attnlens snapshot</title>
<link rel="stylesheet" href="{CSS_FILE}">{head}</head>
<body>
<header class="top"><span class="brand">attnlens snapshot</span><nav>{links}</nav>
<span class="stamp">model {e(o.model)} · exported {e(o.exported_at)}</span></header>
<div class="snapshot">{SNAPSHOT_NOTE}</div>
<main>
{body}
</main>
</body></html>
"""


def card(title: str, *body: str) -> str:
    return f'<section class="card"><h3>{e(title)}</h3>{"".join(body)}</section>'


def panel(title: str, *body: str, ident: str = "") -> str:
    attrs = f' id="{ident}"' if ident else ""
    return f'<section class="panel"{attrs}><h2>{e(title)}</h2>{"".join(body)}</section>'


def table(headers: Sequence[str], rows: Sequence[str], ident: str = "", numeric: Sequence[int] = ()) -> str:
    """A table of ready rows; the headers of the `numeric` columns are right-aligned, as their numbers."""
    attrs = f' id="{ident}"' if ident else ""
    head = "".join(f"<th{' class=num' if i in numeric else ''}>{h}</th>" for i, h in enumerate(headers))
    return f'<table class="data"{attrs}><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def note(text: str) -> str:
    return f'<p class="muted small">{text}</p>'


def bar(fraction: float) -> str:
    return f'<span class="bar"><span style="width:{100 * max(0.0, min(1.0, fraction)):.1f}%"></span></span>'


def interval(estimate: float, low: float, high: float) -> str:
    return f"{pct(estimate)} [{pct(low)}, {pct(high)}]"


# --- index.html ----------------------------------------------------------------------------------------
