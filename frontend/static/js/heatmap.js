// One head's full attention pattern as a Plotly heatmap, token labels on both axes.

import { showToken } from "./dom.js";
import { plotConfig } from "./plots.js";

const MAX_TICKS = 48;

/** The colour range of log10 weights: from the smallest positive weight (floored to a whole power of ten)
 * to 0. A fixed floor (it was -4) left every smaller weight as a white hole in the picture. */
export function logRange(values) {
  let smallest = Infinity;
  for (const row of values) for (const v of row) if (v > 0 && v < smallest) smallest = v;
  return smallest === Infinity ? [-1, 0] : [Math.min(-1, Math.floor(Math.log10(smallest))), 0];
}

/** Draw `pattern` (PatternPublic) into `div`; `log` shows log10 of the weights (small ones become visible).
 * Exact zeros (above the diagonal: keys after the query) stay blank in both scales: no attention there. */
export function drawPattern(div, pattern, { log = false } = {}) {
  const n = pattern.tokens.length;
  const labels = pattern.tokens.map((t, i) => `${i}:${showToken(t)}`);
  const z = log ? pattern.values.map((row) => row.map((v) => (v > 0 ? Math.log10(v) : null))) : pattern.values;
  const [low, high] = log ? logRange(pattern.values) : [0, undefined];
  const step = Math.max(1, Math.ceil(n / MAX_TICKS));
  const ticks = [];
  for (let i = 0; i < n; i += step) ticks.push(i);
  const axis = (title) => ({
    title: { text: title, font: { size: 11 } },
    tickvals: ticks,
    ticktext: ticks.map((i) => labels[i]),
    tickfont: { family: "ui-monospace, monospace", size: 9 },
    showgrid: false,
    zeroline: false,
  });
  const trace = {
    type: "heatmap",
    z,
    x: [...Array(n).keys()],
    y: [...Array(n).keys()],
    colorscale: "Viridis",
    zmin: low,
    zmax: high,
    colorbar: { title: { text: log ? "log10 weight" : "weight", side: "right" }, thickness: 10 },
    customdata: pattern.values.map((row, q) => row.map((w, k) => [labels[q], labels[k], w])),
    hovertemplate: log
      ? "query %{customdata[0]}<br>key %{customdata[1]}<br>log10 weight %{z:.2f} (weight %{customdata[2]:.2e})<extra></extra>"
      : "query %{customdata[0]}<br>key %{customdata[1]}<br>weight %{z:.4f}<extra></extra>",
  };
  // The hole: the row that predicts it and the column where it sits in the source, outlined (not filled,
  // so the weights under them stay readable).
  const line = { color: "#e4572e", width: 1.5 };
  const shapes = [];
  if (Number.isInteger(pattern.hole_query)) shapes.push({ type: "rect", xref: "x", yref: "y", x0: -0.5, x1: n - 0.5, y0: pattern.hole_query - 0.5, y1: pattern.hole_query + 0.5, line });
  if (Number.isInteger(pattern.hole_key)) shapes.push({ type: "rect", xref: "x", yref: "y", x0: pattern.hole_key - 0.5, x1: pattern.hole_key + 0.5, y0: -0.5, y1: n - 0.5, line: { ...line, dash: "dot" } });
  const layout = {
    shapes,
    margin: { l: 90, r: 10, t: 10, b: 90 },
    xaxis: { ...axis("key token"), tickangle: -60 },
    yaxis: { ...axis("query token"), autorange: "reversed", scaleanchor: "x" },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#fff",
    font: { size: 11 },
  };
  return window.Plotly.react(div, [trace], layout, plotConfig(`pattern-${pattern.id}-${pattern.name}`));
}
