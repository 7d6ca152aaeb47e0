// Intervene: toggle heads (or whole layers) on the grid, re-generate with them zeroed, and compare with the
// baseline; launch a population experiment and plot its dose curve. URL: #/intervene/<id>?heads=L0H1,L2H3&job=7

import { api, has } from "../api.js";
import { setState } from "../url.js";
import { codeWithHole, holeLegend } from "../code.js";
import { CATEGORICAL } from "../colors.js";
import { errorBox, fill, h, notAvailable, num, showToken, withStatus } from "../dom.js";
import { HeadGrid, gridLegend } from "../grid.js";
import { jobBlock, pollJob } from "../jobs.js";
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

function doseCurve(div, result) {
  const rows = result.rows;
  const byRule = new Map();
  for (const row of rows) {
    if (!byRule.has(row.rule)) byRule.set(row.rule, []);
    byRule.get(row.rule).push(row);
  }
  const traces = [...byRule.entries()].map(([rule, rs], i) => {
    rs.sort((a, b) => a.n - b.n);
    return {
      type: "scatter", mode: "lines+markers", name: RULES[rule] ?? rule,
      x: rs.map((r) => r.n), y: rs.map((r) => r.accuracy),
      error_y: { type: "data", symmetric: false, array: rs.map((r) => r.accuracy_high - r.accuracy), arrayminus: rs.map((r) => r.accuracy - r.accuracy_low), thickness: 1 },
      line: { color: CATEGORICAL[i % CATEGORICAL.length], dash: ["solid", "dash", "dot", "dashdot"][i % 4] },
      marker: { symbol: ["circle", "square", "diamond", "triangle-up"][i % 4] },
      customdata: rs.map((r) => [r.i2c, r.c2i]),
      hovertemplate: "n=%{x}<br>accuracy %{y:.3f}<br>incorrect→correct %{customdata[0]:.3f}, correct→incorrect %{customdata[1]:.3f}<extra>%{fullData.name}</extra>",
    };
  });
  return window.Plotly.react(div, traces, {
    margin: { l: 60, r: 10, t: 10, b: 50 }, height: 320,
    xaxis: { title: { text: "heads ablated" }, type: "log", tickvals: [...new Set(rows.map((r) => r.n))].sort((a, b) => a - b) },
    yaxis: { title: { text: "accuracy (95% CI)" }, rangemode: "tozero" },
    legend: { orientation: "h", y: -0.25 }, paper_bgcolor: "rgba(0,0,0,0)",
    // The unablated accuracy on the same scenarios, for reference.
    shapes: typeof result.baseline_accuracy === "number"
      ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: result.baseline_accuracy, y1: result.baseline_accuracy, line: { color: "#555", dash: "dot", width: 1 } }] : [],
    annotations: typeof result.baseline_accuracy === "number"
      ? [{ xref: "paper", x: 1, xanchor: "right", y: result.baseline_accuracy, yanchor: "bottom", text: `no ablation ${result.baseline_accuracy.toFixed(3)}`, showarrow: false, font: { size: 10, color: "#555" } }] : [],
  }, { displaylogo: false, responsive: true });
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
  const jobSlot = h("div", { id: "experiment-job" });
  const plot = h("div", { class: "dose", id: "dose-curve" });
  const follow = async (jobId) => {
    setState({ job: jobId });
    try {
      let first = true;
      const job = await pollJob(jobId, (j) => {
        if (first && j.parameters) {
          // A shared link shows the experiment it names, with that experiment's settings in the form.
          first = false;
          if (j.parameters.task) task.value = j.parameters.task;
          if (Array.isArray(j.parameters.n)) ns.value = j.parameters.n.join(",");
          if (j.parameters.scenarios) scenarios.value = j.parameters.scenarios;
          if (Array.isArray(j.parameters.rules)) for (const l of rules) l.querySelector("input").checked = j.parameters.rules.includes(l.querySelector("input").value);
        }
        fill(jobSlot, jobBlock(j));
      }, { signal: signalOf() });
      if (job.state === "succeeded" && job.result?.rows) doseCurve(plot, job.result);
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
    };
    const job = await withStatus(jobSlot, "Queueing the experiment", () => api("/api/experiments", { method: "POST", body }));
    if (job) follow(job.id);
  } }, "Launch");
  panel.append(h("div", { class: "filters" }, h("label", {}, "task ", task), h("label", {}, "heads ablated ", ns), h("label", {}, "scenarios ", scenarios), ...rules, launch), jobSlot, plot);
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
  const headGrid = new HeadGrid(grid, {
    label: "Heads to ablate",
    onActivate: (cell) => toggle(cell.name),
    onLayer: (layer) => {
      const names = grid.heads.filter((c) => c.layer === layer).map((c) => c.name);
      const allOn = names.every((n) => ablated.has(n));
      for (const n of names) allOn ? ablated.delete(n) : ablated.add(n);
      show();
    },
    describe: (cell) => [ablated.has(cell.name) ? "ablated (click to restore)" : "click to ablate"],
  });
  const resultSlot = h("div", { id: "ablation-slot" });
  const regenerate = h("button", { class: "primary", id: "regenerate", onclick: async () => {
    regenerate.disabled = true;
    const result = await withStatus(resultSlot, `Re-generating with ${ablated.size} heads ablated`, (onWait) =>
      api(`/api/inferences/${id}/ablations`, { method: "POST", body: { heads: [...ablated] }, onWait, signal: controller.signal }));
    regenerate.disabled = false;
    if (result) fill(resultSlot, ablationResult(result));
  } }, "Re-generate");
  const reset = h("button", { onclick: () => { ablated.clear(); show(); fill(resultSlot); } }, "Reset");
  const experiment = await experimentPanel(inf, route.params.get("job"), () => controller.signal);

  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, `Intervene on #${id}`), h("a", { class: "button", href: `#/inference/${id}` }, "← gallery")),
    inferenceHeader(inf),
    h("section", { class: "panel" }, codeWithHole(inf), holeLegend()),
    h("div", { class: "two-col" },
      h("section", { class: "panel" }, h("h2", {}, "Heads"), h("p", { class: "muted" }, "Click a head to toggle it; click a layer label (L0, L1, …) to toggle the whole layer."),
        headGrid.element, gridLegend(["ablated", "focus"])),
      h("section", { class: "panel" }, h("h2", {}, "Ablate and re-generate"), h("div", { class: "actions" }, regenerate, reset), picked, resultSlot)),
    experiment);
  show();
  return () => {
    controller.abort();
    headGrid.destroy();
  };
}
