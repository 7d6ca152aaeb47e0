// Gallery of one inference: the code with its hole, the grid of every head, and the selected head in detail
// (full pattern, optionally the hole's attention row drawn over the code, its cluster, its nearest patterns
// across the atlas). Pasted code is marked "pasted" and can be deleted here (mined rows belong to the atlas).
// URL: #/inference/<id>?head=L3H5&log=1&scope=head&overlay=1

import { api, decodeBytes, has, query } from "../api.js";
import { setState } from "../url.js";
import { codeWithHole, holeLegend } from "../code.js";
import { thumbnailCanvas } from "../colors.js";
import { bringIntoView, clusterText, errorBox, fill, h, int, notAvailable, num, verdict, withStatus } from "../dom.js";
import { HeadGrid, gridLegend } from "../grid.js";
import { drawPattern } from "../heatmap.js";
import { notYet } from "../jobs.js";
import { attentionOverlay } from "../overlay.js";

export function inferenceHeader(inf) {
  return h("div", { class: "facts" },
    inf.source === "pasted" ? h("span", { class: "source-pasted", id: "source-pasted", title: "Pasted code: kept out of the atlas's clusters, map, predictors and counts" }, "pasted") : null,
    h("span", {}, `task ${inf.task ?? "pasted"}`),
    inf.file_path ? h("span", { class: "path" }, inf.file_path) : null,
    h("span", {}, `mode ${inf.mode ?? "–"}`),
    inf.node_type ? h("span", {}, `node ${inf.node_type}`) : null,
    h("span", {}, "first token ", verdict(inf.first_token_correct)),
    h("span", {}, "span ", verdict(inf.span_correct)),
    h("span", {}, `p(expected) ${num(inf.expected_token_prob, 3)}`));
}

function neighbourCard(hit) {
  const bytes = decodeBytes(hit.thumbnail);
  // The hit's cluster in its head (NeighborHit.cluster): a neighbour from another cluster of the same head is
  // a near miss worth seeing. Left out when no clustering covers the hit.
  const cluster = hit.cluster === null || hit.cluster === undefined ? null : clusterText(hit.cluster);
  return h("a", { class: "neighbour", href: `#/inference/${hit.inference_id}?head=${hit.name}`, title: `open ${hit.name} of inference #${hit.inference_id}${cluster ? ` (${cluster})` : ""}` },
    thumbnailCanvas(bytes, hit.thumbnail_size, 0, 72),
    h("div", { class: "nb-name" }, `${hit.name} · #${hit.inference_id}`),
    h("div", { class: "muted" }, `${hit.task ?? "pasted"} · cos ${num(hit.score, 3)}`),
    cluster ? h("div", { class: "muted nb-cluster" }, cluster) : null,
    h("div", {}, h("code", {}, hit.target_text ?? ""), " ", verdict(hit.first_token_correct)));
}

async function clusterSection(slot, cell, signal) {
  if (!(await has("/api/heads/{name}/clusters"))) return fill(slot, notAvailable("Clustering"));
  // No clustering yet is a state of the atlas, not a failure: say what is queued, and fill in when done.
  const waiting = await notYet("atlas_cluster", () => clusterSection(slot, cell, signal), { signal });
  if (waiting) return fill(slot, waiting);
  let clusters;
  try {
    clusters = await api(`/api/heads/${cell.name}/clusters`, { signal });
  } catch (err) {
    if (err.name === "AbortError") return;
    // 404 here means "no clustering yet": a state of the atlas, not a failure.
    return fill(slot, err.status === 404 ? h("div", { class: "notice" }, err.message) : errorBox(err));
  }
  if (clusters.length === 0) return fill(slot, h("p", { class: "muted" }, "This head has no clusters."));
  const top = (counts) => Object.entries(counts || {}).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${v}`).join(", ");
  fill(slot, h("table", { class: "compact clusters" },
    h("thead", {}, h("tr", {}, ["cluster", "size", "tasks", "node types", "medoid"].map((t) => h("th", {}, t)))),
    h("tbody", {}, clusters.map((c) => h("tr", {},
      h("td", {}, c.label === -1 ? "noise" : String(c.label)),
      h("td", { class: "num" }, int(c.size)),
      h("td", {}, top(c.tasks)),
      h("td", {}, top(c.node_types)),
      h("td", {}, c.medoid_pattern_id ? h("a", { href: `#/pattern/${c.medoid_pattern_id}` }, `pattern ${c.medoid_pattern_id}`) : "–"))))));
}

export async function render(root, route) {
  const id = Number(route.parts[1]);
  const state = { head: route.params.get("head"), log: route.params.get("log") !== "0", scope: route.params.get("scope") || "all", overlay: route.params.get("overlay") === "1" };
  const status = h("div");
  fill(root, h("h1", {}, `Inference #${id}`), status);
  const loaded = await withStatus(status, "Loading the inference and its heads", () => Promise.all([api(`/api/inferences/${id}`), api(`/api/inferences/${id}/heads`)]));
  if (!loaded) return;
  const [inf, grid] = loaded;

  const detail = h("section", { class: "panel detail", id: "head-detail" }, h("p", { class: "muted" }, "Click a head (or use the arrow keys and Enter) to see its full pattern, its cluster and its nearest patterns."));
  let controller = null;
  const headGrid = new HeadGrid(grid, { onActivate: (cell) => select(cell, { push: true }), label: `Heads of inference ${id}` });

  async function select(cell, { push = false } = {}) {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    state.head = cell.name;
    headGrid.setSelected(cell.name);
    setState({ head: cell.name }, { push });
    const plot = h("div", { class: "heatmap", id: "pattern-plot" });
    const plotStatus = h("div");
    const clusterSlot = h("div", { id: "cluster-slot" });
    const neighbourSlot = h("div", { class: "neighbours", id: "neighbours" });
    const neighbourStatus = h("div");
    const logBox = h("input", { type: "checkbox", checked: state.log });
    const overlayBox = h("input", { type: "checkbox", id: "overlay-toggle", checked: state.overlay });
    const overlaySlot = h("div", { id: "overlay-slot" });
    const scope = h("select", { "aria-label": "neighbour scope" },
      [["all", "whole atlas"], ["head", `same head (${cell.name})`], ["task", `same task (${inf.task ?? "–"})`]].map(([v, l]) => h("option", { value: v, selected: v === state.scope }, l)));
    fill(detail,
      h("div", { class: "detail-head" }, h("h2", {}, cell.name),
        h("span", { class: "muted" }, `pattern ${cell.id} · entropy ${num(cell.entropy, 2)} · diagonal ${num(cell.diagonal_mass, 2)} · previous ${num(cell.previous_token_mass, 2)} · first ${num(cell.first_token_mass, 2)} · local ${num(cell.local_mass, 2)}`),
        h("label", { class: "inline" }, logBox, " log scale"),
        h("label", { class: "inline", title: "draw the attention of the query that predicts the hole over the code" }, overlayBox, " hole's attention on the code")),
      plotStatus, plot,
      h("p", { class: "muted", id: "hole-marks" }, "Outlined in red: the row of the query that predicts the hole (solid) and the column of the last token before the hole in the source (dotted)."),
      overlaySlot,
      h("h3", {}, "Cluster"), clusterSlot,
      h("div", { class: "detail-head" }, h("h3", {}, "Nearest patterns"), scope), neighbourStatus, neighbourSlot);
    if (push) bringIntoView(detail); // a click on a head: show what it opened (not on the page's first load)

    let pattern = null;
    const drawOverlay = () => fill(overlaySlot, state.overlay && pattern ? attentionOverlay(pattern) : null);
    overlayBox.addEventListener("change", () => {
      state.overlay = overlayBox.checked;
      setState({ overlay: state.overlay ? "1" : "" });
      drawOverlay();
    });
    logBox.addEventListener("change", () => {
      state.log = logBox.checked;
      setState({ log: state.log ? "" : "0" });
      if (pattern) drawPattern(plot, pattern, { log: state.log });
    });
    const loadNeighbours = async () => {
      const filter = state.scope === "head" ? { layer: cell.layer, head: cell.head } : state.scope === "task" && inf.task ? { task: inf.task } : {};
      const result = await withStatus(neighbourStatus, "Searching the atlas", () => api(`/api/patterns/${cell.id}/neighbors${query({ k: 12, ...filter })}`, { signal }));
      if (!result) return;
      fill(neighbourSlot, result.hits.length ? result.hits.map(neighbourCard) : h("p", { class: "muted" }, "No neighbours with this filter."));
    };
    scope.addEventListener("change", () => {
      state.scope = scope.value;
      setState({ scope: state.scope === "all" ? "" : state.scope });
      loadNeighbours();
    });
    const patternLoad = withStatus(plotStatus, "Recomputing the full pattern on the model", (onWait) => api(`/api/patterns/${cell.id}`, { signal, onWait })).then((p) => {
      if (!p || signal.aborted) return;
      pattern = p;
      drawOverlay();
      return drawPattern(plot, p, { log: state.log });
    });
    await Promise.all([patternLoad, loadNeighbours(), clusterSection(clusterSlot, cell, signal).catch((err) => fill(clusterSlot, errorBox(err)))]);
  }

  const deleteStatus = h("div", { id: "delete-status" });
  const deleteButton = inf.source !== "pasted" ? null : h("button", { id: "delete-inference", onclick: async () => {
    if (!window.confirm(`Delete pasted inference #${id} with its head patterns?`)) return;
    const done = await withStatus(deleteStatus, "Deleting", () => api(`/api/inferences/${id}`, { method: "DELETE" }));
    if (!done) return;
    controller?.abort();
    headGrid.destroy();
    fill(root, h("h1", {}, `Inference #${id}`),
      h("div", { class: "notice", id: "inference-deleted" }, `Deleted pasted inference #${id} and its ${int(done.head_patterns)} head patterns. `,
        h("a", { href: "#/paste" }, "Paste more code"), " · ", h("a", { href: "#/" }, "back to the atlas")));
  } }, "Delete this paste");
  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, `Inference #${id}`),
      h("a", { class: "button", href: `#/intervene/${id}` }, "Intervene on this completion →"), deleteButton),
    deleteStatus,
    inferenceHeader(inf),
    h("section", { class: "panel" }, codeWithHole(inf), holeLegend()),
    h("div", { class: "two-col" },
      h("section", { class: "panel" }, h("h2", {}, `Heads (${grid.n_layers} layers × ${grid.n_heads} heads)`), headGrid.element, gridLegend(["selected", "focus"])),
      detail));
  const initial = state.head && headGrid.byName.get(state.head);
  if (initial) await select(initial);
  return () => {
    controller?.abort();
    headGrid.destroy();
  };
}
