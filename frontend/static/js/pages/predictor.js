// One correctness predictor and the evidence behind its accuracy (GET /api/predictors/{id}): the accuracy
// [95% CI] beside chance and beside the shuffled-label control, the fold accuracies, a reliability diagram,
// and every head's SHAP importance as a sortable table and a layer x head heatmap. Clicking a head selects
// it: its importance and its clusters, whose medoids open the head in the gallery.
// URL: #/predictor/<id>?sort=abs|signed&order=desc|asc&head=L3H5

import { plotConfig } from "../plots.js";
import { api, query } from "../api.js";
import { setState } from "../url.js";
import { errorBox, fill, h, int, loading, num, pct, withStatus } from "../dom.js";

const SORTS = { abs: "mean_abs_shap", signed: "mean_shap" };
const signed = (x, digits = 4) => (x === null || x === undefined ? "–" : `${x >= 0 ? "+" : "−"}${num(Math.abs(x), digits)}`);
const interval = (estimate, low, high) => `${pct(estimate)} [${pct(low)}, ${pct(high)}]`;

/** What the accuracy's interval says against chance, in words (the page's main claim). */
export function chanceVerdict(p) {
  const ci = `[${pct(p.accuracy_low)}, ${pct(p.accuracy_high)}]`;
  if (p.chance === null || p.chance === undefined) return { kind: "unknown", text: "No chance level was stored with this predictor, so its accuracy cannot be compared with it." };
  if (p.accuracy_low > p.chance)
    return { kind: "above", text: `The 95% interval ${ci} lies above chance (${pct(p.chance)}, the majority-class rate): on these ${int(p.n_rows)} rows the predictor does better than always guessing the more common outcome.` };
  if (p.accuracy_high < p.chance)
    return { kind: "below", text: `The 95% interval ${ci} lies below chance (${pct(p.chance)}, the majority-class rate): always guessing the more common outcome would do better.` };
  return { kind: "contains", text: `The 95% interval ${ci} contains chance (${pct(p.chance)}, the majority-class rate): on these ${int(p.n_rows)} rows this predictor cannot be told apart from always guessing the more common outcome. Its probabilities say little.` };
}

function controlVerdict(p) {
  const c = p.shuffled_control;
  if (!c) return "No shuffled-label control was stored with this predictor.";
  const overlap = c.accuracy_high >= p.accuracy_low;
  return `The shuffled-label control (the same cross-validation with the labels randomly permuted, so there is nothing to learn) scores ${interval(c.accuracy, c.accuracy_low, c.accuracy_high)}; ${overlap ? "the real accuracy's interval overlaps it." : "the real accuracy's interval lies above it."}`;
}

/** Horizontal bars: the cross-validated accuracy and the shuffled control with their intervals, chance as a line. */
function drawAccuracy(div, p) {
  const rows = [["cross-validated", p.accuracy, p.accuracy_low, p.accuracy_high, "#0072B2"]];
  if (p.shuffled_control) {
    const c = p.shuffled_control;
    rows.push(["shuffled labels", c.accuracy, c.accuracy_low, c.accuracy_high, "#999999"]);
  }
  const trace = {
    type: "bar", orientation: "h", y: rows.map((r) => r[0]), x: rows.map((r) => r[1]),
    marker: { color: rows.map((r) => r[4]) },
    error_x: { type: "data", symmetric: false, array: rows.map((r) => r[3] - r[1]), arrayminus: rows.map((r) => r[1] - r[2]), color: "#1d2330", thickness: 1.5, width: 6 },
    customdata: rows.map((r) => [pct(r[2]), pct(r[3])]),
    hovertemplate: "%{y}: %{x:.1%} [%{customdata[0]}, %{customdata[1]}]<extra></extra>",
  };
  const chance = p.chance ?? null;
  const layout = {
    height: 70 + 42 * rows.length, margin: { l: 110, r: 20, t: 24, b: 34 }, showlegend: false,
    xaxis: { range: [0, 1], tickformat: ".0%", title: { text: "accuracy (95% interval)", font: { size: 11 } } },
    yaxis: { autorange: "reversed" },
    shapes: chance === null ? [] : [{ type: "line", x0: chance, x1: chance, yref: "paper", y0: 0, y1: 1, line: { color: "#D55E00", width: 2, dash: "dash" } }],
    annotations: chance === null ? [] : [{ x: chance, yref: "paper", y: 1, yanchor: "bottom", text: `chance ${pct(chance)}`, showarrow: false, font: { size: 11, color: "#D55E00" } }],
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", font: { size: 11 },
  };
  return window.Plotly.react(div, [trace], layout, plotConfig(`predictor-${p.id}-accuracy`));
}

function summary(p) {
  const v = chanceVerdict(p);
  const c = p.shuffled_control;
  return h("section", { class: "panel", id: "predictor-evidence" },
    h("h2", {}, "Accuracy against chance and against a shuffled-label control"),
    h("dl", { class: "counts", id: "predictor-summary" },
      h("dt", {}, "cross-validated accuracy"), h("dd", { id: "predictor-accuracy" }, interval(p.accuracy, p.accuracy_low, p.accuracy_high)),
      h("dt", {}, "chance (majority-class rate)"), h("dd", { id: "predictor-chance" }, pct(p.chance)),
      h("dt", {}, "shuffled-label control"), h("dd", { id: "predictor-shuffled" }, c ? interval(c.accuracy, c.accuracy_low, c.accuracy_high) : "not stored"),
      h("dt", {}, "rows"), h("dd", { id: "predictor-rows" }, `${int(p.n_rows)}${p.n_correct === null ? "" : ` (${int(p.n_correct)} correct)`} · ${p.folds}-fold stratified cross-validation`),
      h("dt", {}, "Brier score"), h("dd", { id: "predictor-brier" }, num(p.brier, 3), c?.brier !== null && c?.brier !== undefined ? h("span", { class: "muted" }, ` (control ${num(c.brier, 3)})`) : null),
      h("dt", {}, "calibration error (ECE)"), h("dd", { id: "predictor-ece" }, num(p.calibration_error, 3)),
      h("dt", {}, "ROC AUC"), h("dd", { id: "predictor-auc" }, num(p.roc_auc, 3), c?.roc_auc !== null && c?.roc_auc !== undefined ? h("span", { class: "muted" }, ` (control ${num(c.roc_auc, 3)})`) : null)),
    h("div", { class: `notice verdict-${v.kind}`, id: "predictor-verdict", role: "note" }, v.text),
    h("p", { class: "muted", id: "predictor-control" }, controlVerdict(p)),
    h("div", { class: "accuracy-plot", id: "accuracy-plot" }),
    h("p", { class: "muted" }, "Accuracy counts out-of-fold predictions at threshold 0.5, each from the fold model that did not see the row; the interval is Wilson's 95% interval over the rows. Brier score and ECE: lower is better."));
}

/** What attention adds over the model's own confidence, in words, from the paired gain's interval. */
export function gainVerdict(set) {
  if (!set || set.reason) return set?.reason || "Not measured.";
  if (!set.accuracy_gain) return `No confidence baseline: ${set.confidence_missing || "not stored."}`;
  const g = set.accuracy_gain;
  const ci = `[${signedPct(g.low)}, ${signedPct(g.high)}]`;
  const auc = set.auc_gain ? ` (ROC AUC ${signed(set.auc_gain.estimate, 3)} [${signed(set.auc_gain.low, 3)}, ${signed(set.auc_gain.high, 3)}])` : "";
  if (g.low > 0) return `Attention adds ${signedPct(g.estimate)} ${ci} accuracy over the model's own confidence at the hole${auc}.`;
  if (g.high < 0) return `Attention + confidence does worse than confidence alone: ${signedPct(g.estimate)} ${ci}${auc}.`;
  return `Attention adds nothing measurable over the model's own confidence at the hole: ${signedPct(g.estimate)} ${ci}${auc}, an interval that covers 0.`;
}
const signedPct = (x) => `${x >= 0 ? "+" : "−"}${pct(Math.abs(x))}`;
const scoreCell = (s) => (s ? `${pct(s.accuracy.estimate)} [${pct(s.accuracy.low)}, ${pct(s.accuracy.high)}]` : "–");

const ROW_SETS = [
  ["stratified", "all rows (stratified)", "every row; chance is the majority-class rate"],
  ["balanced", "balanced", "equal correct and incorrect rows (the rarer class whole, a seeded draw of the other), cross-validated again; chance 0.5"],
  ["exact_holes", "exact holes", "the stratified predictions on holes that already sat on token boundaries (not widened by mining)"],
];

function baselinesPanel(p) {
  const b = p.baselines;
  const panel = h("section", { class: "panel", id: "predictor-baselines" }, h("h2", {}, "Against the model's own confidence"));
  if (!b) return [panel, h("p", { class: "muted" }, "This predictor was trained before baselines were stored; train predictors again to see them.")];
  panel.append(
    h("p", { class: "notice", id: "baseline-verdict", role: "note" }, gainVerdict(b.stratified)),
    h("div", { class: "scroll-table" }, h("table", { class: "compact baselines", id: "baseline-table" },
      h("thead", {}, h("tr", {}, ["rows", "n", "chance", "attention", "confidence", "attention + confidence", "gain over confidence"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ROW_SETS.map(([key, label, help]) => {
        const set = b[key];
        if (!set || set.reason) return h("tr", { dataset: { set: key } }, h("th", { title: help }, label), h("td", { colspan: 6, class: "muted" }, set?.reason || "not measured"));
        const n = set.attention?.n_rows;
        return h("tr", { dataset: { set: key } },
          h("th", { title: help }, label, set.fraction === null || set.fraction === undefined ? null : h("span", { class: "muted" }, ` (${pct(set.fraction)} of rows)`)),
          h("td", { class: "num" }, n === undefined ? "–" : int(n)),
          h("td", { class: "num" }, set.attention ? pct(set.attention.chance) : "–"),
          h("td", { class: "num" }, scoreCell(set.attention)),
          h("td", { class: "num" }, set.confidence ? scoreCell(set.confidence) : h("span", { class: "muted", title: set.confidence_missing || "" }, "not stored")),
          h("td", { class: "num" }, scoreCell(set.attention_plus_confidence)),
          h("td", { class: "num" }, set.accuracy_gain ? `${signedPct(set.accuracy_gain.estimate)} [${signedPct(set.accuracy_gain.low)}, ${signedPct(set.accuracy_gain.high)}]` : "–"));
      })))),
    h("p", { class: "muted" }, "Confidence: a logistic regression on the model's top-1 probability, top-1 minus top-2 margin and entropy at the hole, cross-validated on the same folds as this predictor. Attention + confidence adds this predictor's out-of-fold log-odds as a fourth input. Accuracies with Wilson 95% intervals; the gain is paired, with a bootstrap 95% interval over rows."));
  return panel;
}

function foldTable(p) {
  const folds = p.fold_accuracies || [];
  if (folds.length === 0) return h("p", { class: "muted", id: "fold-table" }, "No fold accuracies were stored with this predictor.");
  const mean = folds.reduce((a, b) => a + b, 0) / folds.length;
  const sd = Math.sqrt(folds.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, folds.length - 1));
  const rounds = p.rounds || [];
  return h("div", {},
    h("table", { class: "compact fold-table", id: "fold-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "fold"), h("th", { class: "num" }, "accuracy"), h("th", {}, ""), rounds.length ? h("th", { class: "num" }, "rounds") : null)),
      h("tbody", {}, folds.map((a, i) => h("tr", {},
        h("td", {}, String(i + 1)),
        h("td", { class: "num" }, pct(a)),
        h("td", { class: "barcell" }, h("div", { class: "fold-bar" }, h("div", { class: "bar", style: `width:${(100 * a).toFixed(1)}%` }),
          p.chance === null ? null : h("div", { class: "chance", style: `left:${(100 * p.chance).toFixed(1)}%`, title: `chance ${pct(p.chance)}` }))),
        rounds.length ? h("td", { class: "num" }, rounds[i] ?? "–") : null)))),
    h("p", { class: "muted", id: "fold-spread" }, `mean ${pct(mean)} · sd ${pct(sd)} · range ${pct(Math.min(...folds))}–${pct(Math.max(...folds))}. Each fold holds about ${int(Math.round(p.n_rows / p.folds))} rows; the black tick is chance.${rounds.length ? " Rounds: CatBoost boosting rounds per fold (early stopping)." : ""}`));
}

/** Reliability diagram: mean predicted vs observed rate per bin (marker size and label: rows), the diagonal, and the counts. */
function drawReliability(div, bins) {
  const full = bins.filter((b) => b.count > 0 && b.mean_predicted !== null && b.observed_rate !== null);
  const size = (count) => 6 + 16 * Math.sqrt(count / Math.max(...full.map((b) => b.count), 1));
  const traces = [
    { type: "bar", x: bins.map((b) => (b.low + b.high) / 2), y: bins.map((b) => b.count), width: bins.map((b) => b.high - b.low), yaxis: "y2",
      name: "rows per bin", marker: { color: "rgba(86,180,233,0.25)", line: { color: "rgba(0,114,178,0.4)", width: 1 } },
      hovertemplate: "%{y} rows<extra>bin</extra>" },
    { type: "scatter", mode: "lines", x: [0, 1], y: [0, 1], name: "perfect calibration", line: { color: "#999", dash: "dash", width: 1.5 }, hoverinfo: "skip" },
    { type: "scatter", mode: "lines+markers+text", x: full.map((b) => b.mean_predicted), y: full.map((b) => b.observed_rate), name: "observed",
      text: full.map((b) => String(b.count)), textposition: "top center", textfont: { size: 10, color: "#5f6b7a" },
      marker: { color: "#0072B2", size: full.map((b) => size(b.count)), line: { color: "#fff", width: 1 } }, line: { color: "#0072B2", width: 1.5 },
      customdata: full.map((b) => [b.low, b.high, b.count]),
      hovertemplate: "bin %{customdata[0]:.1f}–%{customdata[1]:.1f}: %{customdata[2]} rows<br>mean predicted %{x:.3f}<br>observed rate %{y:.3f}<extra></extra>" },
  ];
  const layout = {
    height: 360, margin: { l: 56, r: 56, t: 10, b: 46 }, legend: { orientation: "h", y: -0.2 },
    xaxis: { range: [0, 1], title: { text: "mean predicted P(correct)", font: { size: 11 } }, zeroline: false },
    yaxis: { range: [0, 1], title: { text: "observed rate of correct", font: { size: 11 } }, zeroline: false },
    yaxis2: { overlaying: "y", side: "right", rangemode: "tozero", tickmode: "auto", nticks: 5, tickformat: "d", showgrid: false, title: { text: "rows", font: { size: 11 } } },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", font: { size: 11 },
  };
  return window.Plotly.react(div, traces, layout, plotConfig("predictor-reliability"));
}

/** Every head's mean |SHAP| on the layer x head grid (layer 0 at the top, as on the gallery's grid). */
function drawImportanceMap(div, heads, selected) {
  const nLayers = Math.max(...heads.map((x) => x.layer)) + 1;
  const nHeads = Math.max(...heads.map((x) => x.head)) + 1;
  const z = Array.from({ length: nLayers }, () => new Array(nHeads).fill(null));
  const custom = Array.from({ length: nLayers }, (_, l) => Array.from({ length: nHeads }, (_, k) => [`L${l}H${k}`, "–"]));
  for (const x of heads) {
    z[x.layer][x.head] = x.mean_abs_shap;
    custom[x.layer][x.head] = [x.name, signed(x.mean_shap)];
  }
  const chosen = heads.find((x) => x.name === selected);
  const trace = {
    type: "heatmap", z, colorscale: "Viridis", xgap: 1, ygap: 1, customdata: custom,
    colorbar: { title: { text: "mean |SHAP|", side: "right" }, thickness: 10 },
    hovertemplate: "%{customdata[0]}<br>mean |SHAP| %{z:.4f}<br>signed mean %{customdata[1]}<extra>click to select</extra>",
  };
  const layout = {
    height: Math.max(260, Math.min(720, 60 + 18 * nLayers)), margin: { l: 50, r: 10, t: 10, b: 40 },
    xaxis: { title: { text: "head", font: { size: 11 } }, dtick: nHeads > 16 ? 2 : 1, zeroline: false },
    yaxis: { title: { text: "layer", font: { size: 11 } }, autorange: "reversed", dtick: nLayers > 32 ? 4 : nLayers > 16 ? 2 : 1, zeroline: false },
    shapes: chosen ? [{ type: "rect", x0: chosen.head - 0.5, x1: chosen.head + 0.5, y0: chosen.layer - 0.5, y1: chosen.layer + 0.5, line: { color: "#E69F00", width: 3 } }] : [],
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", font: { size: 11 },
  };
  return window.Plotly.react(div, [trace], layout, plotConfig("predictor-head-importance"));
}

/** The selected head: its importance and its clusters, each medoid opening the head in the gallery. */
async function headPanel(slot, p, head, rank, signal) {
  fill(slot,
    h("div", { class: "detail-head" }, h("h2", {}, head.name),
      h("span", { class: "muted" }, `rank ${rank} of ${p.head_importance.length} by mean |SHAP| · mean |SHAP| ${num(head.mean_abs_shap, 4)} · signed mean ${signed(head.mean_shap)}`)),
    h("p", { class: "muted" }, `Its clusters in the newest clustering of ${p.model_name}; a medoid opens ${head.name} of that completion in the gallery (its pattern, cluster and nearest patterns).`));
  const list = h("div", { id: "predictor-head-clusters" }, loading(`Loading the clusters of ${head.name}`));
  slot.append(list);
  let clusters;
  try {
    clusters = await api(`/api/heads/${head.name}/clusters${query({ model: p.model_name })}`, { signal });
  } catch (err) {
    if (err.name === "AbortError") return;
    // 404 here means "no clustering yet": a state of the atlas, not a failure.
    return fill(list, err.status === 404 ? h("div", { class: "notice" }, err.message) : errorBox(err));
  }
  if (signal.aborted) return;
  if (clusters.length === 0) return fill(list, h("p", { class: "muted" }, "This head has no clusters."));
  const top = (counts) => Object.entries(counts || {}).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${v}`).join(", ");
  fill(list, h("table", { class: "compact clusters" },
    h("thead", {}, h("tr", {}, ["cluster", "size", "tasks", "medoid"].map((t) => h("th", {}, t)))),
    h("tbody", {}, clusters.map((c) => h("tr", {},
      h("td", {}, c.label === -1 ? "noise" : String(c.label)),
      h("td", { class: "num" }, int(c.size)),
      h("td", {}, top(c.tasks)),
      h("td", {}, c.medoid_pattern_id ? h("a", { class: "medoid-link", href: `#/pattern/${c.medoid_pattern_id}`, title: `open ${head.name} of the medoid's completion in the gallery` }, `open ${head.name} (pattern ${c.medoid_pattern_id})`) : "–"))))));
}

export async function render(root, route) {
  const id = Number(route.parts[1]);
  const state = {
    sort: SORTS[route.params.get("sort")] ? route.params.get("sort") : "abs",
    order: route.params.get("order") === "asc" ? "asc" : "desc",
    head: route.params.get("head"),
  };
  const status = h("div");
  fill(root, h("h1", {}, `Predictor #${id}`), status);
  const p = await withStatus(status, "Loading the predictor and its evaluation", () => api(`/api/predictors/${id}`));
  if (!p) return;

  const heads = p.head_importance || [];
  const rankOf = new Map([...heads].sort((a, b) => b.mean_abs_shap - a.mean_abs_shap).map((x, i) => [x.name, i + 1]));
  const byName = new Map(heads.map((x) => [x.name, x]));
  const accuracyPlot = () => root.querySelector("#accuracy-plot");
  const reliabilityPlot = h("div", { class: "reliability-plot", id: "reliability-plot" });
  const heatmap = h("div", { class: "importance-heatmap", id: "importance-heatmap" });
  const tableSlot = h("div", { class: "scroll-table" });
  const headSlot = h("section", { class: "panel", id: "predictor-head" }, h("p", { class: "muted" }, "Click a head in the table or on the heatmap to see its clusters and open it in the gallery."));
  let controller = null;

  const headHref = (name) => `#/predictor/${id}${query({ sort: state.sort === "abs" ? "" : state.sort, order: state.order === "desc" ? "" : state.order, head: name })}`;
  const sortButton = (key, label) => h("th", { class: "num", "aria-sort": state.sort === key ? (state.order === "desc" ? "descending" : "ascending") : "none" },
    h("button", { class: "sort", dataset: { sort: key }, onclick: () => {
      state.order = state.sort === key && state.order === "desc" ? "asc" : "desc";
      state.sort = key;
      setState({ sort: state.sort === "abs" ? "" : state.sort, order: state.order === "desc" ? "" : state.order });
      drawTable();
    } }, label, state.sort === key ? (state.order === "desc" ? " ▼" : " ▲") : ""));

  function drawTable() {
    const field = SORTS[state.sort];
    const sign = state.order === "desc" ? -1 : 1;
    const rows = [...heads].sort((a, b) => sign * (a[field] - b[field]) || rankOf.get(a.name) - rankOf.get(b.name));
    const top = Math.max(...heads.map((x) => x.mean_abs_shap), 1e-12);
    fill(tableSlot, h("table", { class: "compact importance-table", id: "importance-table" },
      h("thead", {}, h("tr", {}, h("th", { class: "num", title: "rank by mean |SHAP|" }, "#"), h("th", {}, "head"), sortButton("abs", "mean |SHAP|"), h("th", {}, ""), sortButton("signed", "signed mean"))),
      h("tbody", {}, rows.map((x) => h("tr", { class: x.name === state.head ? "selected" : null, dataset: { head: x.name } },
        h("td", { class: "num muted" }, String(rankOf.get(x.name))),
        h("td", {}, h("a", { class: "head-link", href: headHref(x.name), onclick: (e) => { e.preventDefault(); select(x.name, { push: true }); } }, h("code", {}, x.name))),
        h("td", { class: "num" }, num(x.mean_abs_shap, 4)),
        h("td", { class: "barcell" }, h("div", { class: "shap-bar" }, h("div", { class: "bar", style: `width:${((100 * x.mean_abs_shap) / top).toFixed(1)}%` }))),
        h("td", { class: `num ${x.mean_shap >= 0 ? "up" : "down"}` }, signed(x.mean_shap)))))));
  }

  async function select(name, { push = false } = {}) {
    const head = byName.get(name);
    if (!head) return;
    state.head = name;
    setState({ head: name }, { push });
    tableSlot.querySelectorAll("tr[data-head]").forEach((tr) => tr.classList.toggle("selected", tr.dataset.head === name));
    drawImportanceMap(heatmap, heads, name);
    controller?.abort();
    controller = new AbortController();
    await headPanel(headSlot, p, head, rankOf.get(name), controller.signal);
  }

  const when = new Date(p.created_at);
  const params = Object.entries(p.parameters || {});
  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, `Predictor #${p.id}`), h("a", { href: "#/" }, "← all predictors (atlas)")),
    h("div", { class: "facts", id: "predictor-facts" },
      h("span", { class: "path" }, p.name),
      h("span", {}, `kind ${p.kind}`),
      h("span", {}, `task `, p.task ? h("a", { href: `#/${query({ task: p.task })}` }, p.task) : "all"),
      h("span", {}, `model ${p.model_name}`),
      p.clustering_id === null ? null : h("span", {}, `clustering ${p.clustering_id}`),
      h("span", {}, `trained ${Number.isNaN(when.getTime()) ? p.created_at : when.toLocaleString()}`)),
    h("div", { class: "two-col" },
      summary(p),
      h("section", { class: "panel" },
        h("h2", {}, "Fold accuracies"), foldTable(p),
        h("h2", {}, "Reliability"),
        (p.reliability || []).length ? [reliabilityPlot,
          h("p", { class: "muted" }, "Out-of-fold P(correct) in equal-width bins: each point is a bin's mean predicted probability against how often its completions were right (the label is its number of rows; the bars count rows per bin, right axis). On the dashed diagonal the probabilities mean what they say.")]
          : h("p", { class: "muted", id: "reliability-plot" }, "No reliability table was stored with this predictor."))),
    baselinesPanel(p),
    h("section", { class: "panel", id: "predictor-heads" },
      h("h2", {}, `SHAP importance of every head (${heads.length})`),
      h("p", { class: "notice", id: "shap-note" }, "Importances come from the final model (fitted on every row) over its training rows, in log-odds of a correct completion. Signed means over the training rows sit near 0 for every head, even for a head that decides the outcome: SHAP values are centred on the model's average prediction, so a head's pushes up and down cancel out. That is why mean |SHAP| ranks heads here; the sign of one completion's value (on the paste page) says which way that head pushes it."),
      heads.length === 0 ? h("p", { class: "muted" }, "No per-head importance was stored with this predictor.")
        : h("div", { class: "importance-layout" }, tableSlot, h("div", {}, heatmap, headSlot))),
    params.length ? h("details", { class: "panel", id: "predictor-parameters" }, h("summary", {}, "Training parameters"),
      h("table", { class: "compact" }, h("tbody", {}, params.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, h("code", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)))))))) : null);

  await drawAccuracy(accuracyPlot(), p);
  if ((p.reliability || []).length) await drawReliability(reliabilityPlot, p.reliability);
  if (heads.length) {
    drawTable();
    await drawImportanceMap(heatmap, heads, state.head);
    heatmap.on("plotly_click", (event) => {
      const point = event.points[0];
      const name = point ? `L${point.y}H${point.x}` : null;
      if (name && byName.has(name)) select(name, { push: true });
    });
    if (state.head && byName.has(state.head)) await select(state.head);
  }
  return () => {
    controller?.abort();
    for (const div of root.querySelectorAll(".js-plotly-plot")) window.Plotly.purge(div);
  };
}
