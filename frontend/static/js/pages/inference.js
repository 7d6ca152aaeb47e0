// Gallery of one inference: the code with its hole, the grid of every head, and the selected head in detail
// (full pattern, optionally the hole's attention row drawn over the code, its cluster, its nearest patterns
// across the atlas). Pasted code is marked "pasted" and can be deleted here (mined rows belong to the atlas).
// The grid can frame each head by how unusual its pattern is for that head (AP-MAE reconstruction error,
// percentile within the head's atlas errors), and a card lists the inference's most unusual heads.
// URL: #/inference/<id>?head=L3H5&log=1&scope=head&overlay=1&unusual=1

import { api, decodeBytes, has, query } from "../api.js";
import { setState } from "../url.js";
import { codeWithHole, holeLegend } from "../code.js";
import { thumbnailCanvas } from "../colors.js";
import { bringIntoView, clusterText, errorBox, fill, h, int, notAvailable, num, pct, verdict, withStatus } from "../dom.js";
import { HeadGrid, chanceText, gridLegend, ordinalPercentile, unusualToggle } from "../grid.js";
import { drawPattern } from "../heatmap.js";
import { notYet } from "../jobs.js";
import { clusterTable, scores } from "../cluster_table.js";
import { attentionOverlay } from "../overlay.js";
import { servedModel } from "../models.js";

export function inferenceHeader(inf) {
  return h("div", { class: "facts" },
    inf.source === "pasted" ? h("span", { class: "source-pasted", id: "source-pasted", title: "Pasted code: kept out of the atlas's clusters, map, predictors and counts" }, "pasted") : null,
    h("span", { class: "inference-model" }, `model ${inf.model_name}`),
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

/** Which cluster the selected pattern is in, in words. */
function membership(cell, inf, clusters) {
  const mine = cell.cluster;
  if (mine === null || mine === undefined) return `This pattern is in no cluster of ${cell.name}'s newest clustering.`;
  if (mine === -1) return `This pattern is noise in ${cell.name}'s clustering (in no cluster)${clusters.some((c) => c.label === -1) ? "; the noise row is highlighted" : ""}.`;
  const how = inf.source === "pasted" ? ", which it joined by a vote of its nearest atlas patterns (pasted code is not clustered itself)" : "";
  return `This pattern is in cluster ${mine} of ${cell.name}${how}; its row is highlighted.`;
}

async function clusterSection(slot, cell, inf, signal) {
  if (!(await has("/api/heads/{name}/clusters"))) return fill(slot, notAvailable("Clustering"));
  // No clustering yet is a state of the atlas, not a failure: say what is queued, and fill in when done.
  const waiting = await notYet("atlas_cluster", () => clusterSection(slot, cell, inf, signal), { signal });
  if (waiting) return fill(slot, waiting);
  let clusters;
  let specs;
  try {
    // The clusters of the inference's own model, whichever model the pages show.
    [clusters, specs] = await Promise.all([api(`/api/heads/${cell.name}/clusters${query({ model: inf.model_name })}`, { signal }), scores()]);
  } catch (err) {
    if (err.name === "AbortError") return;
    // 404 here means "no clustering yet": a state of the atlas, not a failure.
    return fill(slot, err.status === 404 ? h("div", { class: "notice" }, err.message) : errorBox(err));
  }
  if (signal.aborted) return;
  if (clusters.length === 0) return fill(slot, h("p", { class: "muted" }, "This head has no clusters."));
  const mine = cell.cluster;
  fill(slot,
    h("p", { class: "cluster-membership", id: "cluster-membership" }, membership(cell, inf, clusters)),
    ...clusterTable(clusters, specs, mine));
}

/** The inference's most unusual heads (GET /api/inferences/{id}/anomalies): the share of its heads in their
 * tail, and the top ones with their percentile; `show(cell)` selects a head in the grid. */
async function unusualHeads(slot, id, grid, show) {
  if (!(await has("/api/inferences/{inference_id}/anomalies"))) return fill(slot, notAvailable("Unusualness"));
  let result;
  try {
    result = await api(`/api/inferences/${id}/anomalies?limit=5`);
  } catch (err) {
    // 404: the atlas has no reconstruction errors yet (a state of the atlas, not a failure).
    return fill(slot, err.status === 404 ? h("p", { class: "muted", id: "unusual-share" }, "The atlas has no reconstruction errors yet, so how unusual these heads are cannot be judged. Queue a ",
      h("code", {}, "head_scores"), " job on the ", h("a", { href: "#/jobs" }, "Jobs page"), " (or run ", h("code", {}, "attnlens heads backfill"), ").") : errorBox(err));
  }
  const measured = grid.heads.filter((c) => c.error_percentile !== null && c.error_percentile !== undefined);
  const inTail = measured.filter((c) => c.error_percentile > result.tail).length;
  const share = result.unusual_share === null
    ? "None of this inference's heads has an error to compare with its head's atlas errors."
    : `${int(inTail)} of ${int(measured.length)} heads (${pct(result.unusual_share, 0)}) are in the tail of their own atlas errors (above the head's ${ordinalPercentile(result.tail)} percentile; ${chanceText(result.chance_share, result.tail)}).`;
  fill(slot,
    h("p", { id: "unusual-share", dataset: { share: result.unusual_share ?? "" } }, share),
    result.items.length ? h("ol", { class: "unusual-heads", id: "unusual-heads-list" }, result.items.map((a) =>
      h("li", { dataset: { head: a.name } },
        h("a", { href: `#/head/${a.name}`, title: `what ${a.name} does` }, h("code", {}, a.name)),
        ` ${ordinalPercentile(a.percentile)} percentile of its atlas errors · robust z ${num(a.robust_z, 2)} `,
        grid.heads.some((c) => c.name === a.name) ? h("button", { class: "small", type: "button", onclick: () => show(a.name) }, "show") : null))) : null,
    h("p", { class: "muted small" }, "Most unusual first (robust z: the error's distance from the head's median error, in robust standard deviations). Percentile: the share of the head's atlas patterns whose AP-MAE reconstruction error is at most this one's. Unusual is not wrong. ",
      h("a", { href: "#/anomalies" }, "The atlas's most unusual patterns →")));
}

export async function render(root, route) {
  const id = Number(route.parts[1]);
  const state = { head: route.params.get("head"), log: route.params.get("log") !== "0", scope: route.params.get("scope") || "all", overlay: route.params.get("overlay") === "1", unusual: route.params.get("unusual") === "1" };
  const status = h("div");
  fill(root, h("h1", {}, `Inference #${id}`), status);
  const loaded = await withStatus(status, "Loading the inference and its heads", () => Promise.all([api(`/api/inferences/${id}`), api(`/api/inferences/${id}/heads`)]));
  if (!loaded) return;
  const [inf, grid] = loaded;
  // The full pattern is recomputed by the served model: another model's inference keeps its stored thumbnails.
  const served = await servedModel();
  const recomputable = served === null || inf.model_name === served;

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
        h("span", { class: "muted" }, `pattern ${cell.id} · entropy ${num(cell.entropy, 2)} · diagonal ${num(cell.diagonal_mass, 2)} · previous ${num(cell.previous_token_mass, 2)} · first ${num(cell.first_token_mass, 2)} · local ${num(cell.local_mass, 2)}${cell.error_percentile === null || cell.error_percentile === undefined ? "" : ` · ${ordinalPercentile(cell.error_percentile)} percentile of its head's atlas errors`}`),
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
    if (!recomputable) {
      fill(plotStatus, h("p", { class: "notice", id: "pattern-not-recomputed" }, `The full pattern is recomputed by the model the server holds, ${served}; this completion is of ${inf.model_name}, so only its stored thumbnail (in the grid) and statistics are shown. Serve ${inf.model_name} to see it in full.`));
      overlayBox.disabled = true;
      for (const part of [plot, detail.querySelector("#hole-marks")]) part.style.display = "none";
    }
    const patternLoad = !recomputable ? null : withStatus(plotStatus, "Recomputing the full pattern on the model", (onWait) => api(`/api/patterns/${cell.id}`, { signal, onWait })).then((p) => {
      if (!p || signal.aborted) return;
      pattern = p;
      drawOverlay();
      return drawPattern(plot, p, { log: state.log });
    });
    await Promise.all([patternLoad, loadNeighbours(), clusterSection(clusterSlot, cell, inf, signal).catch((err) => fill(clusterSlot, errorBox(err)))]);
  }

  const legendSlot = h("div");
  const drawLegend = () => fill(legendSlot, gridLegend(state.unusual ? ["selected", "focus", "unusual"] : ["selected", "focus"]));
  const toggle = unusualToggle(headGrid, { checked: state.unusual, onChange: (on) => {
    state.unusual = on;
    setState({ unusual: on ? "1" : "" });
    drawLegend();
  } });
  drawLegend();
  const unusualSlot = h("div", { id: "unusual-slot" });

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
      h("section", { class: "panel" }, h("div", { class: "detail-head" }, h("h2", {}, `Heads (${grid.n_layers} layers × ${grid.n_heads} heads)`), toggle),
        headGrid.element, legendSlot,
        h("div", { class: "unusual-card", id: "unusual-card" }, h("h3", {}, "Unusual heads"), unusualSlot)),
      detail));
  const unusualLoad = unusualHeads(unusualSlot, id, grid, (name) => select(headGrid.byName.get(name), { push: true })).catch((err) => fill(unusualSlot, errorBox(err)));
  const initial = state.head && headGrid.byName.get(state.head);
  if (initial) await select(initial);
  await unusualLoad;
  return () => {
    controller?.abort();
    headGrid.destroy();
  };
}
