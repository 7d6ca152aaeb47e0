// Intervene: toggle heads (or whole layers) on the grid, re-generate with them zeroed, and compare with the
// baseline; launch a population experiment and plot its dose curve. URL: #/intervene/<id>?heads=L0H1,L2H3&job=7

import { api, has, saveBlob } from "../api.js";
import { servedModel, servedOnlyNotice } from "../models.js";
import { setState } from "../url.js";
import { codeWithHole, holeLegend } from "../code.js";
import { CATEGORICAL } from "../colors.js";
import { bringIntoView, downloadLink, errorBox, fill, h, notAvailable, num, showToken, withStatus } from "../dom.js";
import { HeadGrid, gridLegend } from "../grid.js";
import { jobBlock, pollJob } from "../jobs.js";
import { plotConfig } from "../plots.js";
import { sweepLine, sweepPanel } from "../sweep.js";
import { inferenceHeader } from "./inference.js";

const RULES = { top_positive: "top positive SHAP", top_negative: "top negative SHAP", neutral: "neutral (least important)", random: "random" };

function diffView(diff) {
  return h("div", { class: "diff", id: "ablation-diff" }, diff.map((d) => {
    if (d.op === "equal") return h("span", { class: "eq" }, showToken(d.baseline.join("")));
    return [
      d.baseline.length ? h("del", { title: "baseline only" }, showToken(d.baseline.join(""))) : null,
      d.ablated.length ? h("ins", { title: "ablated only" }, showToken(d.ablated.join(""))) : null,
    ];
  }));
}

function ablationResult(r) {
  const delta = r.delta_p_expected;
  return h("div", { class: "result", id: "ablation-result", dataset: { changed: String(r.changed) } },
    h("p", {}, r.changed ? h("strong", {}, "The completion changed.") : "The completion is unchanged.", ` Ablated: ${r.heads.length ? r.heads.join(", ") : "none"}.`),
    h("dl", { class: "counts" },
      h("dt", {}, "baseline"), h("dd", {}, h("code", {}, showToken(r.baseline_text))),
      h("dt", {}, "ablated"), h("dd", {}, h("code", {}, showToken(r.ablated_text))),
      h("dt", {}, "diff"), h("dd", {}, diffView(r.diff)),
      h("dt", {}, `p(${r.expected_token === null ? "expected" : JSON.stringify(r.expected_token)})`),
      h("dd", {}, `${num(r.p_expected_baseline, 4)} → ${num(r.p_expected_ablated, 4)} (${delta === null ? "–" : `${delta >= 0 ? "+" : ""}${num(delta, 4)}`})`),
      h("dt", {}, "KL at the hole"), h("dd", {}, `${num(r.kl_at_hole, 4)} nats`)));
}

/** The heads a result row ablated (null: a row from before rows recorded them). */
const headsOf = (row) => (Array.isArray(row.heads) ? row.heads : null);
/** How many heads a row really ablated: fewer than asked when the rule's pool was smaller. */
const ablatedCount = (row) => headsOf(row)?.length ?? row.n_heads ?? row.n;

/** Head names for the hover box: `perLine` a line, at most `max`, the rest counted. */
function hoverHeads(heads, perLine = 8, max = 48) {
  if (heads === null) return "not recorded";
  if (!heads.length) return "none";
  const shown = heads.slice(0, max);
  const lines = [];
  for (let i = 0; i < shown.length; i += perLine) lines.push(shown.slice(i, i + perLine).join(", "));
  return lines.join("<br>") + (heads.length > max ? `<br>… and ${heads.length - max} more (see the table)` : "");
}

/** Rows grouped by rule (in the order rules first appear), each group sorted by heads ablated. */
function rowsByRule(rows) {
  const byRule = new Map();
  for (const row of rows) {
    if (!byRule.has(row.rule)) byRule.set(row.rule, []);
    byRule.get(row.rule).push(row);
  }
  for (const rs of byRule.values()) rs.sort((a, b) => a.n - b.n || ablatedCount(a) - ablatedCount(b));
  return byRule;
}

function doseCurve(div, result) {
  const rows = result.rows;
  const traces = [...rowsByRule(rows).entries()].map(([rule, rs], i) => ({
    type: "scatter", mode: "lines+markers", name: RULES[rule] ?? rule,
    x: rs.map(ablatedCount), y: rs.map((r) => r.accuracy),
    error_y: { type: "data", symmetric: false, array: rs.map((r) => r.accuracy_high - r.accuracy), arrayminus: rs.map((r) => r.accuracy - r.accuracy_low), thickness: 1 },
    line: { color: CATEGORICAL[i % CATEGORICAL.length], dash: ["solid", "dash", "dot", "dashdot"][i % 4] },
    marker: { symbol: ["circle", "square", "diamond", "triangle-up"][i % 4] },
    customdata: rs.map((r) => [r.i2c, r.c2i, r.n, hoverHeads(headsOf(r))]),
    hovertemplate: "%{x} heads ablated (asked for %{customdata[2]})<br>accuracy %{y:.3f}<br>incorrect→correct %{customdata[0]:.0f}, correct→incorrect %{customdata[1]:.0f}<br><b>heads:</b> %{customdata[3]}<extra>%{fullData.name}</extra>",
  }));
  return window.Plotly.react(div, traces, {
    margin: { l: 60, r: 10, t: 10, b: 50 }, height: 320,
    xaxis: { title: { text: "heads ablated" }, type: "log", tickvals: [...new Set(rows.map(ablatedCount))].sort((a, b) => a - b) },
    yaxis: { title: { text: "accuracy (95% CI)" }, rangemode: "tozero" },
    legend: { orientation: "h", y: -0.25 }, paper_bgcolor: "rgba(0,0,0,0)",
    // The unablated accuracy on the same scenarios, for reference.
    shapes: typeof result.baseline_accuracy === "number"
      ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: result.baseline_accuracy, y1: result.baseline_accuracy, line: { color: "#555", dash: "dot", width: 1 } }] : [],
    annotations: typeof result.baseline_accuracy === "number"
      ? [{ xref: "paper", x: 1, xanchor: "right", y: result.baseline_accuracy, yanchor: "bottom", text: `no ablation ${result.baseline_accuracy.toFixed(3)}`, showarrow: false, font: { size: 10, color: "#555" } }] : [],
  }, plotConfig(`dose-curve${result.task ? `-${result.task}` : ""}`));
}

// The export's columns: every number of a row, then its heads (space-separated in one field).
/** Under the plot: every point's numbers and the heads it ablated, and the rows as CSV or JSON. */
function doseDetail(job) {
  const result = job.result;
  const rules = [...rowsByRule(result.rows).entries()];
  const exportJson = () => saveBlob(new Blob([JSON.stringify({ job: job.id, kind: job.kind, parameters: job.parameters, result }, null, 2) + "\n"],
    { type: "application/json" }), `experiment-${job.id}.json`);
  const interval = (r, key) => `${num(r[key])} [${num(r[`${key}_low`])}, ${num(r[`${key}_high`])}]`;
  const countText = (x) => (x === null || x === undefined ? "–" : Number.isInteger(x) ? String(x) : Number(x).toFixed(1));
  const count = (r, key) => (r[`${key}_low`] === undefined ? countText(r[key]) : `${countText(r[key])} [${countText(r[`${key}_low`])}, ${countText(r[`${key}_high`])}]`);
  return h("div", { id: "dose-detail" },
    result.ranked_by ? h("p", { class: "muted", id: "dose-ranked-by" }, `Heads ranked by ${result.ranked_by}.`) : null,
    h("div", { class: "actions" },
      h("span", { class: "muted" }, `${result.rows.length} points${result.model_heads ? ` (the model has ${result.model_heads} heads)` : ""}; export them with the heads each ablated:`),
      downloadLink(`/api/exports/experiments/${job.id}.csv`, `experiment-${job.id}.csv`, "export-csv", "CSV"),
      downloadLink(`/api/exports/experiments/${job.id}.parquet`, `experiment-${job.id}.parquet`, "export-parquet", "Parquet"),
      h("button", { class: "small", id: "export-json", onclick: exportJson }, "JSON")),
    h("table", { class: "dose-table", id: "dose-table" },
      h("thead", {}, h("tr", {}, ["rule", "asked", "ablated", "accuracy [95% CI]", "change", "incorrect→correct", "correct→incorrect", "heads ablated"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rules.flatMap(([rule, rs]) => rs.map((r) => {
        const heads = headsOf(r);
        return h("tr", { dataset: { rule, n: String(r.n) } },
          h("td", {}, RULES[rule] ?? rule), h("td", {}, String(r.n)),
          h("td", { class: ablatedCount(r) < r.n ? "short" : null, title: ablatedCount(r) < r.n ? "the rule's pool held fewer heads than asked for" : null }, String(ablatedCount(r))),
          h("td", {}, interval(r, "accuracy")), h("td", {}, r.change === undefined ? "–" : `${r.change >= 0 ? "+" : ""}${num(r.change)}`),
          h("td", {}, count(r, "i2c")), h("td", {}, count(r, "c2i")),
          h("td", { class: "heads" }, heads === null ? h("span", { class: "muted" }, "not recorded") : heads.length ? heads.join(", ") : "none"));
      })))));
}

async function experimentPanel(inf, jobParam, signalOf) {
  const panel = h("section", { class: "panel", id: "experiment" }, h("h2", {}, "Population experiment"));
  if (!(await has("/api/experiments", "post"))) {
    panel.append(notAvailable("Launching population experiments"));
    return panel;
  }
  const task = h("input", { name: "task", value: inf.task ?? "", placeholder: "task", size: "18" });
  const ns = h("input", { name: "n", value: "1,2,5,10", size: "12", "aria-label": "numbers of heads" });
  const scenarios = h("input", { name: "scenarios", type: "number", min: "1", value: "50", "aria-label": "scenarios" });
  const rules = Object.keys(RULES).map((r) => h("label", { class: "inline" }, h("input", { type: "checkbox", value: r, checked: true }), ` ${r}`));
  // Balanced: as many scenarios the unablated model gets right as wrong (chance 50%), as the paper measures.
  const balanced = h("input", { type: "checkbox", name: "balanced", id: "experiment-balanced" });
  // The server takes corpora by name (GET /api/corpora); the empty choice leaves it to the server's default.
  const corpus = h("select", { name: "corpus", "aria-label": "corpus" }, h("option", { value: "" }, "latest build's corpus"));
  if (await has("/api/corpora")) {
    try {
      for (const c of await api("/api/corpora")) {
        if (c.available) corpus.append(h("option", { value: c.name, title: c.description }, `${c.name}: ${c.description}`));
      }
    } catch {
      // Without the list the default corpus still works.
    }
  }
  const jobSlot = h("div", { id: "experiment-job" });
  const plot = h("div", { class: "dose", id: "dose-curve" });
  const detail = h("div");
  const follow = async (jobId) => {
    setState({ job: jobId });
    if (plot.data) window.Plotly.purge(plot);  // the last experiment's curve and table go with it
    fill(detail);
    try {
      let first = true;
      const job = await pollJob(jobId, (j) => {
        if (first && j.parameters) {
          // A shared link shows the experiment it names, with that experiment's settings in the form.
          first = false;
          if (j.parameters.task) task.value = j.parameters.task;
          if (Array.isArray(j.parameters.n)) ns.value = j.parameters.n.join(",");
          if (j.parameters.scenarios) scenarios.value = j.parameters.scenarios;
          balanced.checked = j.parameters.balanced === true;
          if (Array.isArray(j.parameters.rules)) for (const l of rules) l.querySelector("input").checked = j.parameters.rules.includes(l.querySelector("input").value);
        }
        fill(jobSlot, jobBlock(j));
      }, { signal: signalOf() });
      if (job.state === "succeeded" && job.result?.rows) {
        doseCurve(plot, job.result);
        fill(detail, doseDetail(job));
      }
    } catch (err) {
      if (err.name !== "AbortError") fill(jobSlot, errorBox(err));
    }
  };
  const launch = h("button", { onclick: async () => {
    const body = {
      task: task.value.trim(),
      rules: rules.map((l) => l.querySelector("input")).filter((c) => c.checked).map((c) => c.value),
      n: ns.value.split(",").map((s) => Number(s.trim())).filter((x) => Number.isInteger(x) && x > 0),
      scenarios: Number(scenarios.value),
      balanced: balanced.checked,
      ...(corpus.value ? { corpus: corpus.value } : {}),
    };
    const job = await withStatus(jobSlot, "Queueing the experiment", () => api("/api/experiments", { method: "POST", body }));
    if (job) follow(job.id);
  } }, "Launch");
  panel.append(h("div", { class: "filters" }, h("label", {}, "task ", task), h("label", {}, "heads ablated ", ns), h("label", {}, "scenarios ", scenarios),
    h("label", {}, "corpus ", corpus), h("label", { class: "inline", title: "as many scenarios the unablated model gets right as it gets wrong" }, balanced, " balanced"), ...rules, launch), jobSlot, plot, detail);
  if (jobParam) follow(Number(jobParam));
  return panel;
}

export async function render(root, route) {
  const id = Number(route.parts[1]);
  const status = h("div");
  fill(root, h("h1", {}, `Intervene on #${id}`), status);
  const loaded = await withStatus(status, "Loading the inference and its heads", () => Promise.all([api(`/api/inferences/${id}`), api(`/api/inferences/${id}/heads`)]));
  if (!loaded) return;
  const [inf, grid] = loaded;
  const ablated = new Set((route.params.get("heads") || "").split(",").filter(Boolean));
  const controller = new AbortController();
  const picked = h("span", { class: "muted", id: "ablated-list" });
  const show = () => {
    headGrid.setAblated(ablated);
    picked.textContent = ablated.size ? `${ablated.size} ablated: ${[...ablated].sort().join(", ")}` : "no heads ablated (click heads or layer labels)";
    setState({ heads: [...ablated].join(",") });
  };
  const toggle = (name) => {
    if (ablated.has(name)) ablated.delete(name);
    else ablated.add(name);
    show();
  };
  const toggleLayer = (layer) => {
    const names = grid.heads.filter((c) => c.layer === layer).map((c) => c.name);
    const allOn = names.every((n) => ablated.has(n));
    for (const n of names) allOn ? ablated.delete(n) : ablated.add(n);
    show();
  };
  let sweepRows = new Map();
  const headGrid = new HeadGrid(grid, {
    label: "Heads to ablate",
    onActivate: (cell) => toggle(cell.name),
    onLayer: toggleLayer,
    describe: (cell) => [ablated.has(cell.name) ? "ablated (click to restore)" : "click to ablate", sweepLine(sweepRows.get(cell.name))].filter(Boolean),
  });
  const resultSlot = h("div", { id: "ablation-slot" });
  const regenerate = h("button", { class: "primary", id: "regenerate", onclick: async () => {
    regenerate.disabled = true;
    const result = await withStatus(resultSlot, `Re-generating with ${ablated.size} heads ablated`, (onWait) =>
      api(`/api/inferences/${id}/ablations`, { method: "POST", body: { heads: [...ablated] }, onWait, signal: controller.signal }));
    regenerate.disabled = false;
    if (result) {
      fill(resultSlot, ablationResult(result));
      bringIntoView(resultSlot);
    }
  } }, "Re-generate");
  const reset = h("button", { onclick: () => { ablated.clear(); show(); fill(resultSlot); } }, "Reset");
  // Ablations, sweeps and experiments run on the served model: say so when the page is about another one.
  const [served, servedOnly] = await Promise.all([servedModel(), servedOnlyNotice("ablations, sweeps and experiments run on the model the server holds")]);
  const otherModel = served && inf.model_name !== served
    ? h("div", { class: "notice served-only", id: "served-model-notice", role: "note" }, h("strong", {}, `This completion is of ${inf.model_name}, not of the served model ${served}`),
      `: ablating or sweeping its heads needs ${inf.model_name} served, so the server refuses it here.`)
    : servedOnly;
  const experiment = await experimentPanel(inf, route.params.get("job"), () => controller.signal);
  const sweep = await sweepPanel(inf, {
    grid: headGrid, signal: controller.signal, metric: route.params.get("sweep") || "dp",
    toggle: (row) => (row.head === null ? toggleLayer(row.layer) : toggle(row.target)),
    onRows: (rows) => (sweepRows = rows),
  });

  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, `Intervene on #${id}`), h("a", { class: "button", href: `#/inference/${id}` }, "← gallery")),
    otherModel,
    inferenceHeader(inf),
    h("section", { class: "panel" }, codeWithHole(inf), holeLegend()),
    h("div", { class: "two-col" },
      h("section", { class: "panel" }, h("h2", {}, "Heads"), h("p", { class: "muted" }, "Click a head to toggle it; click a layer label (L0, L1, …) to toggle the whole layer."),
        headGrid.element, gridLegend(["ablated", "focus"])),
      h("section", { class: "panel" }, h("h2", {}, "Ablate and re-generate"), h("div", { class: "actions" }, regenerate, reset), picked, resultSlot)),
    sweep,
    experiment);
  show();
  return () => {
    controller.abort();
    headGrid.destroy();
  };
}
