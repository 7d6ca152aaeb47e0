// The cluster map's selection panel: what a box or lasso selection (Plotly's `plotly_selected`) holds, as a
// summary, a table of its first patterns (each opens its pattern) and a CSV of all of them.

import { saveBlob } from "./api.js";
import { h, int, pct, verdict } from "./dom.js";
import { headName, outcomeName, taskName } from "./map_traces.js";
import { navigate } from "./url.js";

export const SELECTION_ROWS = 50;

/** Open a pattern in its inference's gallery (the map's click and the selection table both do this). */
export function openPattern(id) {
  navigate(["pattern", id]);
}

/** The `k` most frequent values of `keyOf(row)` over `rows`, as [value, count], most frequent first. */
function mostCommon(rows, keyOf, k = 3) {
  const counts = new Map();
  for (const i of rows) counts.set(keyOf(i), (counts.get(keyOf(i)) || 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, k);
}

function outcomes(points, rows) {
  const n = { right: 0, wrong: 0, unknown: 0 };
  for (const i of rows) n[outcomeName(points.correct[i])] += 1;
  return n;
}

/** "62.0% (31 of 50)" of first tokens right among the rows whose outcome is known. */
function rightShare(n) {
  const known = n.right + n.wrong;
  return known ? `${pct(n.right / known)} (${int(n.right)} of ${int(known)})` : "– (no known outcome)";
}

function summary(points, rows, shownRows) {
  const completions = new Set(rows.map((i) => points.inference[i])).size;
  const mine = outcomes(points, rows);
  const all = outcomes(points, shownRows);
  const share = (pairs) => pairs.map(([name, count]) => `${name} ${pct(count / rows.length)} (${int(count)})`).join(" · ");
  return h("div", { class: "map-selection-summary", id: "map-selection-summary" },
    h("p", {}, h("strong", { id: "map-selection-count" }, `${int(rows.length)} ${rows.length === 1 ? "pattern" : "patterns"} selected`),
      ` of the ${int(shownRows.length)} points shown, from ${int(completions)} ${completions === 1 ? "completion" : "completions"}.`),
    h("p", { id: "map-selection-outcomes" }, `First token right: ${rightShare(mine)} of the selected patterns`,
      mine.unknown ? ` (${int(mine.unknown)} unknown)` : "", `, against ${rightShare(all)} of all points shown.`,
      h("span", { class: "muted" }, " Each pattern counts its completion's outcome once, so a completion weighs as many times as it has selected heads.")),
    h("p", { id: "map-selection-dominant" }, "Most common in the selection (share of its patterns): layers ", share(mostCommon(rows, (i) => `L${points.layer[i]}`)),
      "; heads ", share(mostCommon(rows, (i) => headName(points, i))), "; tasks ", share(mostCommon(rows, (i) => taskName(points.task[i]))), "."));
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function downloadCsv(points, rows, filename) {
  const header = ["pattern_id", "layer", "head", "task", "first_token_correct", "inference_id", "cluster", "x", "y"];
  const lines = rows.map((i) => [points.id[i], points.layer[i], points.head[i], points.task[i], points.correct[i], points.inference[i], points.cluster[i], points.x[i], points.y[i]].map(csvCell).join(","));
  saveBlob(new Blob([[header.join(","), ...lines].join("\n") + "\n"], { type: "text/csv" }), filename);
}

function table(points, rows, onExclude) {
  const open = (event, id) => {
    if (event.target.closest("button, a")) return; // the row's own link and button do their own thing
    openPattern(id);
  };
  return h("div", { class: "scroll-table map-selection-scroll" }, h("table", { class: "list map-selection-table", id: "map-selection-table" },
    h("thead", {}, h("tr", {}, ["pattern", "head", "task", "first token", "completion", "cluster", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((i) => h("tr", { class: "clickable", dataset: { pattern: String(points.id[i]) }, onclick: (e) => open(e, points.id[i]) },
      h("td", {}, h("a", { href: `#/pattern/${points.id[i]}` }, `${points.id[i]}`)),
      h("td", { class: "mono" }, headName(points, i)),
      h("td", {}, taskName(points.task[i])),
      h("td", {}, verdict(points.correct[i])),
      h("td", {}, `#${points.inference[i]}`),
      h("td", {}, points.cluster[i] ?? "–"),
      h("td", {}, h("button", { type: "button", class: "small", title: `hide every point of completion #${points.inference[i]}`, onclick: () => onExclude(points.inference[i]) }, "hide completion")))))));
}

/**
 * The panel under the map. `selectedRows` (map rows, or null before any selection) are among `shownRows`
 * (the rows the filters leave). `onExclude(inferenceId)` hides a completion; `onClear()` drops the selection.
 */
export function selectionPanel(points, selectedRows, { shownRows, mapId, onExclude, onClear }) {
  const panel = (...body) => h("section", { class: "panel map-selection", id: "map-selection" }, ...body);
  if (selectedRows === null) {
    return panel(h("h2", {}, "Selection"), h("p", { class: "muted", id: "map-selection-help" },
      "Pick box select or lasso (\u201cdrag\u201d above the map, or the map's toolbar) and drag over the map to list the patterns inside; double-click the map to clear the selection."));
  }
  const rows = [...selectedRows].sort((a, b) => points.id[a] - points.id[b]);
  const clear = h("button", { type: "button", class: "small", id: "map-clear-selection", onclick: onClear }, "clear selection");
  if (rows.length === 0) return panel(h("div", { class: "title-row" }, h("h2", {}, "Selection"), clear), h("p", { id: "map-selection-count" }, "No point shown lies inside the selection."));
  const first = rows.slice(0, SELECTION_ROWS);
  const csv = h("button", { type: "button", class: "small", id: "map-selection-csv", onclick: () => downloadCsv(points, rows, `map-${mapId}-selection.csv`) }, `CSV of all ${int(rows.length)}`);
  return panel(
    h("div", { class: "title-row" }, h("h2", {}, "Selection"), h("span", { class: "actions" }, csv, clear)),
    summary(points, rows, shownRows),
    h("p", { class: "muted", id: "map-selection-shown" }, rows.length > first.length
      ? `Showing the first ${int(first.length)} of ${int(rows.length)} selected patterns (by pattern id); the CSV holds all of them. Click a row to open its pattern.`
      : `All ${int(rows.length)} selected patterns, by pattern id. Click a row to open its pattern.`),
    table(points, first, onExclude));
}
