// Cluster map: a WebGL scatter of the atlas's 2-D map, coloured by layer, head, cluster, task or correctness.
// Hover names the point and shows its stored thumbnail (no model call); click opens the full pattern.
// URL: #/map?color=layer&max=200000

import { api, decodeBytes, has, query } from "../api.js";
import { setState } from "../url.js";
import { CATEGORICAL, thumbnailCanvas } from "../colors.js";
import { downloadLink, errorBox, fill, h, int, notAvailable, withStatus } from "../dom.js";
import { notYet } from "../jobs.js";

const COLOURINGS = ["layer", "head", "cluster", "task", "correct"];
const PREVIEW_DELAY_MS = 40; // a pause, not a pass: the thumbnail is a database read

export function traces(points, colour) {
  const n = points.id.length;
  const customdata = new Array(n);
  for (let i = 0; i < n; i++) customdata[i] = [`L${points.layer[i]}H${points.head[i]}`, points.task[i] ?? "pasted", points.cluster[i] ?? "–", points.correct[i] === null ? "unknown" : points.correct[i] ? "right" : "wrong", points.id[i]];
  const base = {
    type: "scattergl", mode: "markers",
    hovertemplate: "%{customdata[0]} · pattern %{customdata[4]}<br>task %{customdata[1]} · cluster %{customdata[2]}<br>first token %{customdata[3]}<extra></extra>",
  };
  if (colour === "layer" || colour === "head" || colour === "cluster") {
    return [{ ...base, x: points.x, y: points.y, customdata,
      marker: { size: 4, opacity: 0.8, color: points[colour].map((v) => (v === null ? -1 : v)), colorscale: "Viridis", showscale: true,
        colorbar: { title: { text: colour === "cluster" ? "cluster (within head; -1 noise)" : colour }, thickness: 10 } } }];
  }
  // Categories: one trace each, so the legend names them and they can be hidden.
  const key = (i) => (colour === "task" ? points.task[i] ?? "pasted" : points.correct[i] === null ? "unknown" : points.correct[i] ? "right" : "wrong");
  const groups = new Map();
  for (let i = 0; i < n; i++) {
    const k = key(i);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(i);
  }
  const fixed = { right: "#0072B2", wrong: "#D55E00", unknown: "#999999" };
  const symbols = { right: "circle", wrong: "x", unknown: "circle-open" };
  if (colour === "correct") return outcomeTraces(points, customdata, base, key, fixed, symbols);
  return [...groups.entries()].sort().map(([k, idx], g) => ({
    ...base, name: k,
    x: idx.map((i) => points.x[i]), y: idx.map((i) => points.y[i]), customdata: idx.map((i) => customdata[i]),
    marker: { size: 4, opacity: 0.8, color: fixed[k] ?? categoryColour(g), symbol: colour === "correct" ? symbols[k] : categorySymbol(g) },
  }));
}

/** Seeded Fisher-Yates order of 0..n-1 (the same picture on every load). */
function shuffledOrder(n, seed = 12345) {
  const order = Array.from({ length: n }, (_, i) => i);
  let state = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Right / wrong / unknown as ONE trace in a shuffled order: with a trace per outcome the one drawn last
 * covered the other, and a map of 55% right read as all wrong. Interleaved, each region shows its real mix;
 * the legend (marker-only entries) gives each outcome's share of the points shown. */
function outcomeTraces(points, customdata, base, key, colours, symbols) {
  const n = points.id.length;
  const order = shuffledOrder(n);
  const counts = {};
  for (let i = 0; i < n; i++) counts[key(i)] = (counts[key(i)] || 0) + 1;
  const all = { ...base, name: "patterns", showlegend: false,
    x: order.map((i) => points.x[i]), y: order.map((i) => points.y[i]), customdata: order.map((i) => customdata[i]),
    marker: { size: 4, opacity: 0.7, color: order.map((i) => colours[key(i)]), symbol: order.map((i) => symbols[key(i)]) } };
  const legend = ["right", "wrong", "unknown"].filter((k) => counts[k]).map((k) => ({
    type: "scattergl", mode: "markers", x: [null], y: [null], hoverinfo: "skip",
    name: `${k}: ${(100 * counts[k] / n).toFixed(1)}% (${int(counts[k])})`, marker: { size: 8, color: colours[k], symbol: symbols[k] } }));
  return [all, ...legend];
}

// More categories than colours (14 tasks, 8 Okabe-Ito colours): each further round of colours takes the
// next marker shape, so no two categories look alike (they shared colours before).
const CATEGORY_SYMBOLS = ["circle", "square", "diamond", "triangle-up"];
export const categoryColour = (g) => CATEGORICAL[g % CATEGORICAL.length];
export const categorySymbol = (g) => CATEGORY_SYMBOLS[Math.floor(g / CATEGORICAL.length) % CATEGORY_SYMBOLS.length];

export async function render(root, route) {
  const colour = COLOURINGS.includes(route.params.get("color")) ? route.params.get("color") : "layer";
  const maxPoints = Number(route.params.get("max") || 200000);
  const status = h("div");
  fill(root, h("h1", {}, "Cluster map"), status);
  if (!(await has("/api/maps/latest"))) return void fill(root, h("h1", {}, "Cluster map"), notAvailable("The cluster map"));
  const waiting = new AbortController();
  const rerender = () => window.dispatchEvent(new HashChangeEvent("hashchange")); // the router draws the map
  const notice = await notYet("atlas_map", rerender, { signal: waiting.signal });
  if (notice) {
    fill(root, h("h1", {}, "Cluster map"), notice);
    return () => waiting.abort();
  }
  const data = await withStatus(status, "Loading the map", () => api(`/api/maps/latest${query({ max_points: maxPoints })}`));
  if (!data) return;
  const select = h("select", { id: "map-colour", "aria-label": "colour by" }, COLOURINGS.map((c) => h("option", { value: c, selected: c === colour }, c)));
  const plot = h("div", { id: "map-plot", class: "map-plot" });
  const preview = h("aside", { class: "panel preview", id: "map-preview" }, h("p", { class: "muted" }, "Rest the pointer on a point to preview its pattern; click to open it."));
  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, "Cluster map"),
      h("span", {}, h("label", {}, "colour by ", select), " ", downloadLink("/api/exports/maps/latest.csv", `map-${data.map_id}.csv`, "export-map", "Every point as CSV"))),
    h("p", { class: "muted" }, `map ${data.map_id} · ${data.model} · showing ${int(data.shown)} of ${int(data.total)} patterns${data.shown < data.total ? " (deterministic sample)" : ""}`),
    h("div", { class: "map-layout" }, h("section", { class: "panel" }, plot), preview));

  const draw = (c) => window.Plotly.react(plot, traces(data.points, c), {
    margin: { l: 30, r: 10, t: 10, b: 30 }, height: 600, hovermode: "closest", dragmode: "pan",
    xaxis: { zeroline: false, showticklabels: false }, yaxis: { zeroline: false, showticklabels: false },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", legend: { itemsizing: "constant" },
  }, { displaylogo: false, responsive: true, scrollZoom: true });
  await draw(colour);
  select.addEventListener("change", () => {
    setState({ color: select.value });
    draw(select.value);
  });

  const cache = new Map();
  let timer = null;
  let controller = null;
  plot.on("plotly_hover", (event) => {
    const point = event.points[0];
    const [name, task, cluster, correct, id] = point.customdata;
    clearTimeout(timer);
    fill(preview, h("h2", {}, `${name} · pattern ${id}`), h("p", {}, `task ${task} · cluster ${cluster} · first token ${correct}`));
    // The stored thumbnail, read from the database (no model call): shown as soon as the pointer pauses.
    timer = setTimeout(async () => {
      controller?.abort();
      controller = new AbortController();
      const slot = h("div", { id: "map-thumbnail" });
      preview.append(slot);
      let stored = cache.get(id);
      try {
        stored ??= await api(`/api/patterns/${id}/thumbnail`, { signal: controller.signal });
      } catch (err) {
        if (err.name !== "AbortError") fill(slot, errorBox(err));
        return;
      }
      cache.set(id, stored);
      fill(slot, thumbnailCanvas(decodeBytes(stored.thumbnail), stored.thumbnail_size, 0, 256),
        h("p", { class: "muted" }, `stored ${stored.thumbnail_size}×${stored.thumbnail_size} thumbnail (average-pooled, log scale) · inference #${stored.inference_id}${stored.target_text ? ` · hole ${JSON.stringify(stored.target_text)}` : ""}`),
        h("p", { class: "muted" }, "Click the point for the full pattern."));
      slot.dataset.shownAt = String(performance.now());
    }, PREVIEW_DELAY_MS);
  });
  plot.on("plotly_click", (event) => {
    const id = event.points[0].customdata[4];
    location.hash = `#/pattern/${id}`;
  });
  return () => {
    clearTimeout(timer);
    controller?.abort();
    window.Plotly.purge(plot);
  };
}
