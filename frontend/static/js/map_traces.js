// The cluster map's Plotly traces, built from the map's column arrays (GET /api/maps/latest `points`) for the
// rows the filters leave. Colours are fixed by the whole loaded map, not by the rows shown, so a filter never
// repaints a layer or a task in another colour.

import { CATEGORICAL } from "./colors.js";
import { int } from "./dom.js";

// More categories than colours (14 tasks, 8 Okabe-Ito colours): each further round of colours takes the
// next marker shape, so no two categories look alike (they shared colours before).
const CATEGORY_SYMBOLS = ["circle", "square", "diamond", "triangle-up"];
export const categoryColour = (g) => CATEGORICAL[g % CATEGORICAL.length];
export const categorySymbol = (g) => CATEGORY_SYMBOLS[Math.floor(g / CATEGORICAL.length) % CATEGORY_SYMBOLS.length];

const OUTCOME_COLOURS = { right: "#0072B2", wrong: "#D55E00", unknown: "#999999" };
const OUTCOME_SYMBOLS = { right: "circle", wrong: "x", unknown: "circle-open" };

export const taskName = (task) => task ?? "pasted";
export const outcomeName = (correct) => (correct === null || correct === undefined ? "unknown" : correct ? "right" : "wrong");
export const headName = (points, i) => `L${points.layer[i]}H${points.head[i]}`;

/** What hover, selection and click read of each point: [head, task, cluster, outcome, pattern id, inference id]. */
export function pointLabels(points) {
  const n = points.id.length;
  const labels = new Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = [headName(points, i), taskName(points.task[i]), points.cluster[i] ?? "–", outcomeName(points.correct[i]), points.id[i], points.inference[i]];
  }
  return labels;
}

/** What stays fixed while filters change: each continuous colouring's range and the order of the tasks. */
export function colourFrame(points) {
  const range = (values) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      const x = v === null ? -1 : v;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    return lo <= hi ? [lo, hi] : [0, 1];
  };
  const tasks = [...new Set(points.task.map(taskName))].sort();
  return { layer: range(points.layer), head: range(points.head), cluster: range(points.cluster), tasks };
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

const BASE = {
  type: "scattergl", mode: "markers",
  hovertemplate: "%{customdata[0]} · pattern %{customdata[4]}<br>task %{customdata[1]} · cluster %{customdata[2]}<br>first token %{customdata[3]} · completion #%{customdata[5]}<extra></extra>",
};

/**
 * The traces for `rows` (indices into the map's columns) coloured by `colour`; `rowsOf[t][k]` is the map row
 * of point k of trace t (what a selection event's curveNumber / pointNumber name). Rows in `selected` (a Set,
 * or null for no selection) are drawn as Plotly's selected points, the others dimmed.
 */
export function traces(points, colour, { rows, labels, frame, selected = null }) {
  const groups = [];
  if (colour === "layer" || colour === "head" || colour === "cluster") {
    const [cmin, cmax] = frame[colour];
    groups.push([rows, { marker: { size: 4, opacity: 0.8, color: rows.map((i) => points[colour][i] ?? -1), colorscale: "Viridis", cmin, cmax, showscale: true,
      colorbar: { title: { text: colour === "cluster" ? "cluster (within head; -1 noise)" : colour }, thickness: 10 } } }]);
  } else if (colour === "correct") {
    return outcomeTraces(points, rows, labels, selected);
  } else if (colour === "family") {
    return familyTraces(points, rows, labels, frame, selected);
  } else {
    // Tasks: one trace each, so the legend names them and they can be hidden.
    const byTask = new Map(frame.tasks.map((t) => [t, []]));
    for (const i of rows) byTask.get(taskName(points.task[i])).push(i);
    frame.tasks.forEach((task, g) => {
      const members = byTask.get(task);
      if (members.length) groups.push([members, { name: task, marker: { size: 4, opacity: 0.8, color: categoryColour(g), symbol: categorySymbol(g) } }]);
    });
  }
  return {
    traces: groups.map(([members, extra]) => withPoints(points, labels, members, selected, extra)),
    rowsOf: groups.map(([members]) => members),
  };
}

function withPoints(points, labels, members, selected, extra) {
  return {
    ...BASE, ...extra,
    x: members.map((i) => points.x[i]), y: members.map((i) => points.y[i]), customdata: members.map((i) => labels[i]),
    selectedpoints: selected ? members.flatMap((i, k) => (selected.has(i) ? [k] : [])) : null,
  };
}

const NO_FAMILY_COLOUR = "#b0b0b0";
const PICKED_COLOUR = "#D55E00";
export const familyName = (f) => (f === null || f === undefined ? "no family in the run" : f === -1 ? "noise (no family)" : `family ${f}`);

/** Pattern families (GET /api/families/points, joined into `points.family`): families shaded by number over
 * grey noise; with `frame.familyPick` set, that one family in orange over every other point in grey. */
function familyTraces(points, rows, labels, frame, selected) {
  const family = points.family ?? [];
  const pick = frame.familyPick ?? null;
  const hovertemplate = BASE.hovertemplate.replace("<extra>", "<br>%{text}<extra>");
  const grey = (members, name) => [members, { name: `${name} (${int(members.length)})`, marker: { size: 4, opacity: 0.35, color: NO_FAMILY_COLOUR } }];
  let groups;
  if (pick !== null) {
    const inside = rows.filter((i) => family[i] === pick);
    groups = [grey(rows.filter((i) => family[i] !== pick), "other patterns"),
      [inside, { name: `family ${pick} (${int(inside.length)})`, marker: { size: 6, opacity: 0.9, color: PICKED_COLOUR } }]];
  } else {
    const [lo, hi] = frame.family ?? [0, 1];
    const some = rows.filter((i) => (family[i] ?? -1) >= 0);
    groups = [grey(rows.filter((i) => (family[i] ?? -1) < 0), "noise or no family"),
      [some, { name: "families", showlegend: false, marker: { size: 4, opacity: 0.85, color: some.map((i) => family[i]), colorscale: "Viridis", cmin: lo, cmax: hi, showscale: true,
        colorbar: { title: { text: "family (0 = largest)" }, thickness: 10, len: 0.85, y: 0.42 } } }]]; // under the legend
  }
  return {
    traces: groups.map(([members, extra]) => withPoints(points, labels, members, selected, { ...extra, hovertemplate, text: members.map((i) => familyName(family[i])) })),
    rowsOf: groups.map(([members]) => members),
  };
}

/** Right / wrong / unknown as ONE trace in a shuffled order: with a trace per outcome the one drawn last
 * covered the other, and a map of 55% right read as all wrong. Interleaved, each region shows its real mix;
 * the legend (marker-only entries) gives each outcome's share of the points shown. */
function outcomeTraces(points, rows, labels, selected) {
  const order = shuffledOrder(rows.length).map((k) => rows[k]);
  const outcome = order.map((i) => outcomeName(points.correct[i]));
  const counts = {};
  for (const k of outcome) counts[k] = (counts[k] || 0) + 1;
  const all = withPoints(points, labels, order, selected, { name: "patterns", showlegend: false,
    marker: { size: 4, opacity: 0.7, color: outcome.map((k) => OUTCOME_COLOURS[k]), symbol: outcome.map((k) => OUTCOME_SYMBOLS[k]) } });
  const legend = ["right", "wrong", "unknown"].filter((k) => counts[k]).map((k) => ({
    type: "scattergl", mode: "markers", x: [null], y: [null], hoverinfo: "skip",
    name: `${k}: ${(100 * counts[k] / rows.length).toFixed(1)}% (${int(counts[k])})`, marker: { size: 8, color: OUTCOME_COLOURS[k], symbol: OUTCOME_SYMBOLS[k] } }));
  return { traces: [all, ...legend], rowsOf: [order, ...legend.map(() => [])] };
}
