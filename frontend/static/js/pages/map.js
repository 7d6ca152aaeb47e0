// Cluster map: a WebGL scatter of the atlas's 2-D map, coloured by layer, head, cluster, task or correctness,
// narrowed by filters (layer, head, task, first-token correctness) and by hidden completions. Hover names the
// point and shows its stored thumbnail (no model call); click opens the full pattern; a box or lasso selection
// lists its patterns under the map.
// Colour by family reads GET /api/families/points once; `family=3` picks one family out (the Families page links so).
// URL: #/map?color=layer&max=200000&layer=0-3&head=2&task=eol&correct=false&exclude=12,40&drag=lasso&family=3

import { api, decodeBytes, has, query, tasks } from "../api.js";
import { setState } from "../url.js";
import { thumbnailCanvas } from "../colors.js";
import { downloadLink, errorBox, fill, h, int, notAvailable, withStatus } from "../dom.js";
import { notYet } from "../jobs.js";
import { colourFrame, pointLabels, traces } from "../map_traces.js";
import { completionsOf, describeFilters, exclusionList, filterBar, filterParams, readFilters, visibleRows } from "../map_filters.js";
import { openPattern, selectionPanel } from "../map_selection.js";
import { plotConfig } from "../plots.js";

export { categoryColour, categorySymbol } from "../map_traces.js";

const COLOURINGS = ["layer", "head", "cluster", "family", "task", "correct"];
const DRAG_MODES = [["pan", "pan"], ["select", "box select"], ["lasso", "lasso"]];
const PREVIEW_DELAY_MS = 40; // a pause, not a pass: the thumbnail is a database read

/** The x and y ranges of every loaded point, padded: the frame stays put while filters change. */
function fullRanges(points) {
  const range = (values) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(lo <= hi)) return [-1, 1];
    const pad = (hi - lo || 1) * 0.04;
    return [lo - pad, hi + pad];
  };
  return { x: range(points.x), y: range(points.y) };
}

export async function render(root, route) {
  let colour = COLOURINGS.includes(route.params.get("color")) ? route.params.get("color") : "layer";
  let dragmode = DRAG_MODES.some(([m]) => m === route.params.get("drag")) ? route.params.get("drag") : "pan";
  let filters = readFilters(route.params);
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
  // The task filter's list comes from the server; asked for while the map loads.
  const taskRequest = tasks().then((list) => ({ list }), (error) => ({ error }));
  const data = await withStatus(status, "Loading the map", () => api(`/api/maps/latest${query({ max_points: maxPoints })}`));
  if (!data) return;
  const { list: taskList = null, error: taskError = null } = await taskRequest;
  const points = data.points;
  const labels = pointLabels(points);
  const frame = colourFrame(points);
  const picked = Number.parseInt(route.params.get("family") ?? "", 10);
  frame.familyPick = Number.isInteger(picked) && picked >= 0 ? picked : null;
  const perInference = completionsOf(points);
  const loaded = points.id.length;

  const select = h("select", { id: "map-colour", "aria-label": "colour by" }, COLOURINGS.map((c) => h("option", { value: c, selected: c === colour }, c)));
  const drag = h("select", { id: "map-drag", "aria-label": "drag to" }, DRAG_MODES.map(([m, text]) => h("option", { value: m, selected: m === dragmode }, text)));
  const plot = h("div", { id: "map-plot", class: "map-plot" });
  const preview = h("aside", { class: "panel preview", id: "map-preview" }, h("p", { class: "muted" }, "Rest the pointer on a point to preview its pattern; click to open it."));
  const filterSlot = h("div");
  const count = h("p", { class: "map-count", id: "map-count", role: "status" });
  const exclusions = h("div");
  const selectionSlot = h("div");
  const familyNote = h("div", { id: "map-family-note", class: "muted", hidden: colour !== "family" });
  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, "Cluster map"),
      h("span", {}, h("label", {}, "colour by ", select), " ", h("label", {}, "drag to ", drag), " ",
        h("span", { class: "actions" }, "Every point as ", downloadLink("/api/exports/maps/latest.csv", `map-${data.map_id}.csv`, "export-map", "CSV"),
          downloadLink("/api/exports/maps/latest.parquet", `map-${data.map_id}.parquet`, "export-map-parquet", "Parquet")))),
    h("p", { class: "muted" }, `map ${data.map_id} · ${data.model} · loaded ${int(data.shown)} of the map's ${int(data.total)} patterns${data.shown < data.total ? " (a deterministic sample; raise max in the address for more)" : ""}`),
    status, familyNote, filterSlot, count, exclusions,
    h("div", { class: "map-layout" }, h("section", { class: "panel" }, plot), preview),
    selectionSlot);

  let shown = [];
  let rowsOf = [];
  let selected = null; // a Set of map rows, or null: no selection
  let ranges = fullRanges(points);

  // The family of each loaded point (GET /api/families/points, the same sample as the map): fetched once, on
  // the first colouring by family.
  let families = null;
  const loadFamilies = async () => {
    if (families) return;
    const answer = await withStatus(familyNote, "Loading the pattern families", () => api(`/api/families/points${query({ max_points: maxPoints })}`));
    families = answer ?? { run_id: null, reason: "The pattern families could not be loaded." };
    const byId = new Map((answer?.ids ?? []).map((id, k) => [id, answer.family[k]]));
    points.family = points.id.map((id) => byId.get(id) ?? null);
    frame.family = [0, Math.max(1, ...points.family.filter((f) => f !== null))];
    if (!answer) return; // withStatus shows the error in the note
    const pick = frame.familyPick;
    fill(familyNote, families.run_id === null
      ? [families.reason, " ", h("a", { href: "#/families" }, "Pattern families")]
      : [`Coloured by pattern family (run #${families.run_id}; grey: noise, in no family). `,
        pick !== null ? [`Family ${pick} picked out in orange · `, h("a", { href: "#/map?color=family", id: "map-all-families" }, "all families"), " · "] : null,
        h("a", { href: pick !== null ? `#/families/${pick}` : "#/families" }, pick !== null ? `family ${pick}'s page` : "the families page")]);
  };

  let redrawing = false;
  const draw = async () => {
    familyNote.hidden = colour !== "family";
    if (colour === "family") await loadFamilies();
    const built = traces(points, colour, { rows: shown, labels, frame, selected });
    rowsOf = built.rowsOf;
    // Keep the reader's zoom: Plotly writes the range it shows back into the layout.
    if (plot.layout?.xaxis?.range) ranges = { x: [...plot.layout.xaxis.range], y: [...plot.layout.yaxis.range] };
    // A redraw drops the drawn box or lasso (the selection lives on as `selectedpoints`), and Plotly reports
    // that as an empty selection: not the reader's doing, so the handlers below ignore it.
    redrawing = true;
    try {
      await window.Plotly.react(plot, built.traces, {
        margin: { l: 30, r: 10, t: 10, b: 30 }, height: 600, hovermode: "closest", dragmode,
        xaxis: { zeroline: false, showticklabels: false, range: ranges.x }, yaxis: { zeroline: false, showticklabels: false, range: ranges.y },
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", legend: { itemsizing: "constant" },
      }, plotConfig(`map-${data.map_id}`, { scrollZoom: true }));
    } finally {
      redrawing = false;
    }
  };

  const showSelection = () => fill(selectionSlot, selectionPanel(points, selected, {
    shownRows: shown, mapId: data.map_id, onExclude: (id) => hide(id), onClear: () => {
      selected = null;
      draw();
      showSelection();
    },
  }));

  // Filters or hidden completions changed: recount, redraw, and keep what is still shown of the selection.
  const apply = async () => {
    shown = visibleRows(points, filters);
    if (selected) selected = new Set(shown.filter((i) => selected.has(i)));
    const words = describeFilters(filters);
    if (filters.exclude.length) words.push(`${filters.exclude.length} ${filters.exclude.length === 1 ? "completion" : "completions"} hidden`);
    fill(count, h("strong", {}, `${int(shown.length)} of ${int(loaded)} ${loaded < data.total ? "loaded " : ""}points shown`),
      words.length ? ` · ${words.join(" · ")}` : " · no filter",
      shown.length === 0 ? h("span", { class: "muted" }, " · no point matches: clear a filter to see some") : null);
    fill(exclusions, exclusionList(filters.exclude, { perInference, onUndo: (ids) => {
      filters = { ...filters, exclude: filters.exclude.filter((id) => !ids.includes(id)) };
      update();
    } }));
    showSelection();
    await draw();
  };
  let live = true; // a filter typed just before leaving the page must not write into the next page's address
  const update = () => {
    if (!live) return;
    setState(filterParams(filters));
    return apply();
  };
  const hide = (inferenceId) => {
    if (filters.exclude.includes(inferenceId)) return;
    filters = { ...filters, exclude: [...filters.exclude, inferenceId].sort((a, b) => a - b) };
    update();
  };

  try {
    visibleRows(points, filters);
  } catch (err) {
    // A layer or head filter in the address that does not read: say so, and show every point.
    fill(status, errorBox(new Error(`The address's layer or head filter does not read (${err.message}); showing every layer and head.`)));
    filters = { ...filters, layer: "", head: "" };
  }
  fill(filterSlot, filterBar(filters, { points, frame, taskList, taskError, onChange: (edited) => {
    filters = { ...edited, exclude: filters.exclude };
    update();
  } }));
  await apply();

  select.addEventListener("change", () => {
    colour = select.value;
    setState({ color: colour });
    draw();
  });
  drag.addEventListener("change", () => {
    dragmode = drag.value;
    setState({ drag: dragmode === "pan" ? "" : dragmode });
    window.Plotly.relayout(plot, { dragmode });
  });
  plot.on("plotly_relayout", (change) => {
    // The map's own toolbar changes the drag mode too: keep the menu and the address in step.
    if (!change || !change.dragmode || change.dragmode === dragmode) return;
    dragmode = change.dragmode;
    if (DRAG_MODES.some(([m]) => m === dragmode)) drag.value = dragmode;
    setState({ drag: dragmode === "pan" ? "" : dragmode });
  });
  plot.on("plotly_selected", (event) => {
    if (redrawing) return;
    if (!event || !Array.isArray(event.points)) {
      selected = null; // Plotly cleared its selection (a click in select mode)
    } else {
      selected = new Set();
      for (const p of event.points) {
        const row = rowsOf[p.curveNumber]?.[p.pointIndex ?? p.pointNumber];
        if (row !== undefined) selected.add(row);
      }
    }
    showSelection();
  });
  plot.on("plotly_deselect", () => {
    if (redrawing) return;
    selected = null;
    showSelection();
  });

  const cache = new Map();
  let timer = null;
  let controller = null;
  plot.on("plotly_hover", (event) => {
    const point = event.points[0];
    if (!point.customdata) return;
    const [name, task, cluster, correct, id, inferenceId] = point.customdata;
    clearTimeout(timer);
    fill(preview, h("h2", {}, `${name} · pattern ${id}`), h("p", {}, `task ${task} · cluster ${cluster} · first token ${correct}`),
      h("p", {}, h("a", { href: `#/inference/${inferenceId}` }, `completion #${inferenceId}`), " ",
        h("button", { type: "button", class: "small", id: "map-preview-hide", title: "hide every point of this completion from the map",
          onclick: () => hide(inferenceId) }, "hide this completion")));
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
    const about = event.points[0].customdata;
    if (about) openPattern(about[4]);
  });
  return () => {
    live = false;
    clearTimeout(timer);
    controller?.abort();
    window.Plotly.purge(plot);
  };
}
