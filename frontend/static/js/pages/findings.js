// Findings: the paper's five claims measured on this atlas (GET /api/findings). Each section sets the paper's
// statement beside what was measured (or why nothing was), with its table and figure; the report downloads
// as Markdown or HTML; a button queues a new report (POST /api/findings) and follows its job.
// Before any report the page says so calmly and how to make one: not yet is not an error.
// URL: #/findings?model=M (default: the served model)

import { plotConfig } from "../plots.js";
import { api, query } from "../api.js";
import { downloadLink, errorBox, fill, h, int, num, pct, withStatus } from "../dom.js";
import { FINISHED, jobBlock, pollJob } from "../jobs.js";

const BASE_LAYOUT = { paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", font: { size: 11 } };
// Okabe-Ito: told apart with any colour vision.
const COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442"];
const CHANCE_COLOR = "#D55E00";

// The same text as the Markdown report (findings_render.py), so page and download read alike.
const ci = (e) => (e ? `${pct(e.estimate)} [${pct(e.low)}, ${pct(e.high)}]` : "–");
const pt = (x) => `${x >= 0 ? "+" : "−"}${(100 * Math.abs(x)).toFixed(1)} pt`;
// A table cell's estimate and interval: the two may wrap apart (the wide tables fit), each stays whole.
// Flips are counts of scenarios (the bootstrap interval of a count), not shares.
const flips = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
const ciCell = (e, fmt = pct) => (e ? [h("span", { class: "estimate" }, fmt(e.estimate)), " ", h("span", { class: "interval" }, `[${fmt(e.low)}, ${fmt(e.high)}]`)] : "–");
// The API's messages mark commands with backticks, as Markdown does; show them as code.
const withCode = (text) => String(text).split("`").map((part, i) => (i % 2 ? h("code", {}, part) : part));
const mse = (e) => (e ? `${e.estimate.toFixed(5)} [${e.low.toFixed(5)}, ${e.high.toFixed(5)}]` : "–");
const spread = (s, digits = 3) => (s ? `median ${num(s.median, digits)} (IQR ${num(s.q1, digits)}–${num(s.q3, digits)}, range ${num(s.minimum, digits)}–${num(s.maximum, digits)}, n = ${s.count})` : "–");
const errorBars = (es) => ({ type: "data", symmetric: false, array: es.map((e) => (e ? e.high - e.estimate : 0)), arrayminus: es.map((e) => (e ? e.estimate - e.low : 0)), thickness: 1.2, width: 4 });
// Columns from `textColumns` on hold numbers: their headers align right, over their figures.
const table = (id, headers, rows, { textColumns = 1, wide = false } = {}) => h("div", { class: `scroll-table findings-table${wide ? " wide" : ""}` },
  h("table", { class: "compact", id }, h("thead", {}, h("tr", {}, headers.map((t, i) => h("th", { class: i >= textColumns ? "num" : null }, t)))), h("tbody", {}, rows)));

/** One claim: the paper's statement beside what was measured (a sentence, or the reason it was not), then the detail. */
function section(key, title, claims, measured, reason, ...detail) {
  return h("section", { class: "panel finding", id: `finding-${key}`, dataset: { absent: reason ? "true" : "false" } },
    h("h2", {}, title),
    h("div", { class: "claim-row" },
      h("div", { class: "claim" }, h("div", { class: "claim-label" }, "The paper"), h("p", {}, claims[key] || "–")),
      h("div", { class: "measured" }, h("div", { class: "claim-label" }, "Measured here"),
        reason ? h("p", { class: "absent", id: `${key}-reason` }, "Not measured: ", withCode(reason)) : h("p", {}, measured))),
    reason ? null : detail);
}

function reconstruction(f, claims, plots) {
  const r = f.reconstruction;
  if (r.reason || !r.model) return section("reconstruction", "(i) Reconstruction", claims, null, r.reason || "no figures were stored.");
  const ratio = (e) => (e && e.estimate ? (r.model.estimate / e.estimate).toFixed(3) : "–");
  const div = h("div", { class: "findings-plot", id: "reconstruction-plot" });
  plots.push(() => window.Plotly.react(div, [
    ["AP-MAE", (x) => x.model, "lines+markers"], ["mean image", (x) => x.mean_image, "lines"], ["mean of visible", (x) => x.mean_visible, "lines"],
  ].map(([name, pick, mode], i) => ({ type: "scatter", mode, name, x: r.per_layer.map((x) => x.layer), y: r.per_layer.map(pick), line: { color: COLORS[i], dash: i ? "dot" : "solid" } })),
  { ...BASE_LAYOUT, height: 300, margin: { l: 64, r: 16, t: 10, b: 40 }, legend: { orientation: "h", y: -0.25 }, xaxis: { title: { text: "layer" }, dtick: 1 }, yaxis: { title: { text: "masked-patch MSE" }, rangemode: "tozero" } }, plotConfig("findings-reconstruction")));
  return section("reconstruction", "(i) Reconstruction", claims,
    `Masked-patch MSE ${mse(r.model)}: ${ratio(r.mean_image)} of the mean-image baseline's and ${ratio(r.mean_visible)} of the mean-of-visible baseline's, on ${int(r.patterns)} patterns from ${int(r.windows)} windows of the checkpoint's ${r.split} split.`,
    null,
    table("reconstruction-table", ["predictor of the masked patches", "MSE [95% CI]", "AP-MAE / this"], [
      ["AP-MAE", r.model, "1"], ["mean image", r.mean_image, ratio(r.mean_image)], ["mean of visible", r.mean_visible, ratio(r.mean_visible)],
    ].map(([name, e, q]) => h("tr", {}, h("td", {}, name), h("td", { class: "num" }, mse(e)), h("td", { class: "num" }, q)))),
    r.per_layer.length ? [div, h("p", { class: "muted" }, `Masked-patch error per layer of checkpoint ${r.checkpoint}; lower is better. Intervals: bootstrap over windows.`)] : null);
}

function generalisation(f, claims) {
  const g = f.generalisation;
  const rows = (g.rows || []).map((row) => h("tr", {}, row.map((cell, i) => h("td", { class: i ? "num" : null }, cell))));
  return section("generalisation", "(ii) Generalisation to an unseen model", claims,
    `Models in the atlas: ${g.models.join(", ") || "none"}. Each cell: the checkpoint's masked-patch MSE [95% interval] on that model's held-out patterns, and its ratio to the better baseline.`, g.reason,
    rows.length ? table("transfer-table", g.header, rows, { wide: true }) : null);
}

function recurrence(f, claims) {
  const r = f.recurrence;
  if (r.reason) return section("recurrence", "(iii) Recurring patterns", claims, null, r.reason);
  const across = `${int(r.clusters_across_tasks)} of ${int(r.clusters)} (${pct(r.clusters_across_tasks / Math.max(r.clusters, 1))})`;
  return section("recurrence", "(iii) Recurring patterns", claims,
    `${int(r.clusters)} clusters over ${int(r.heads)} heads and ${int(r.patterns)} patterns; ${across} draw their members from at least two tasks. Stability across halves (adjusted Rand): ${r.stability_spread ? `median ${num(r.stability_spread.median, 3)}` : "not measured"}.`,
    null,
    h("dl", { class: "counts", id: "recurrence-facts" },
      h("dt", {}, "clustering"), h("dd", {}, `#${r.clustering_id}`),
      h("dt", {}, "clusters per head"), h("dd", {}, spread(r.clusters_per_head, 1)),
      h("dt", {}, "heads without clusters"), h("dd", {}, int(r.heads_without_clusters)),
      h("dt", {}, "patterns left as noise"), h("dd", {}, pct(r.noise_fraction)),
      h("dt", {}, "clusters across tasks"), h("dd", {}, `${across}: at least two tasks, each ≥ ${pct(r.task_share, 0)} of the members`),
      h("dt", {}, "stability (adjusted Rand)"), h("dd", {}, spread(r.stability_spread))),
    r.stability_reason ? h("p", { class: "muted", id: "stability-reason" }, withCode(r.stability_reason)) : null,
    r.stability.length ? table("stability-table", ["head", "adjusted Rand", "clusters (half 1)", "clusters (half 2)"], r.stability.map((s) => h("tr", {},
      h("td", {}, h("code", {}, s.head)), h("td", { class: "num" }, num(s.adjusted_rand, 3)), h("td", { class: "num" }, int(s.clusters_first_half)), h("td", { class: "num" }, int(s.clusters_second_half))))) : null,
    h("p", { class: "muted" }, "Stability: each sampled head's rows split at random into two halves, each half clustered with the same recipe, every row labelled by each half's clusters (kNN vote), the two labellings compared: 1 is the same partition, about 0 is chance."));
}

function correctness(f, claims, plots) {
  const c = f.correctness;
  if (c.reason) return section("correctness", "(iv) Correctness prediction", claims, null, c.reason);
  const rows = c.rows;
  const above = rows.filter((t) => t.chance !== null && t.accuracy.low > t.chance).length;
  const accs = rows.map((t) => t.accuracy.estimate);
  const labels = rows.map((t) => `${t.task}<br>${t.kind}`);
  const div = h("div", { class: "findings-plot", id: "correctness-plot" });
  plots.push(() => window.Plotly.react(div, [
    ...[["attention", (t) => t.accuracy], ["confidence", (t) => t.confidence], ["attention + confidence", (t) => t.combined]].map(([name, pick], i) => {
      const es = rows.map(pick);
      return { type: "bar", name, x: labels, y: es.map((e) => (e ? e.estimate : null)), marker: { color: COLORS[i] }, error_y: { ...errorBars(es), color: "#1d2330" },
        customdata: es.map((e) => ci(e)), hovertemplate: `${name}: %{customdata}<extra>%{x}</extra>` };
    }),
    // Chance is drawn as shapes (below); this trace only puts it in the legend.
    { type: "scatter", mode: "lines", name: "chance", x: [null], y: [null], line: { color: CHANCE_COLOR, dash: "dash", width: 2 } },
  ], { ...BASE_LAYOUT, barmode: "group", bargap: 0.35, height: 320, margin: { l: 56, r: 16, t: 10, b: 40 }, legend: { orientation: "h", y: -0.2 },
    xaxis: { type: "category" }, yaxis: { range: [0, 1], tickformat: ".0%", title: { text: "accuracy (95% interval)" } },
    // One dashed line across each task's group of bars: a marker would sit on the middle bar only.
    shapes: rows.filter((t) => t.chance !== null).map((t) => ({ type: "line", xref: "x", x0: rows.indexOf(t) - 0.42, x1: rows.indexOf(t) + 0.42, y0: t.chance, y1: t.chance, line: { color: CHANCE_COLOR, dash: "dash", width: 2 } })),
  }, plotConfig("findings-correctness")));
  const balanced = (t) => (t.balanced_accuracy ? [ciCell(t.balanced_accuracy), h("div", { class: "muted" }, `${t.balanced_per_class} + ${t.balanced_per_class} rows`)] : "–");
  const exact = (t) => (t.exact_accuracy ? [ciCell(t.exact_accuracy), h("div", { class: "muted" }, `${int(t.exact_rows)} rows, chance ${pct(t.exact_chance)}`)] : "–");
  const notes = rows.filter((t) => t.note);
  return section("correctness", "(iv) Correctness prediction", claims,
    `${above} of ${rows.length} task and predictor pairs lie above chance (the interval's low end above the majority-class rate); cross-validated accuracy ${pct(Math.min(...accs))}–${pct(Math.max(...accs))}.`,
    null,
    table("correctness-table", ["task", "kind", "rows", "chance", "accuracy [95% CI]", "shuffled labels", "confidence", "attention + confidence", "gain over confidence", "balanced", "exact holes"],
      rows.map((t) => h("tr", { dataset: { predictor: t.predictor_id } },
        h("td", {}, t.task),
        h("td", {}, h("a", { href: `#/predictor/${t.predictor_id}`, class: "predictor-link", title: `the evidence behind predictor #${t.predictor_id}` }, t.kind)),
        h("td", { class: "num" }, int(t.n_rows)),
        h("td", { class: "num" }, pct(t.chance)),
        h("td", { class: `num accuracy${t.chance !== null && t.accuracy.low > t.chance ? " above-chance" : ""}` }, ciCell(t.accuracy)),
        h("td", { class: "num" }, ciCell(t.shuffled)),
        h("td", { class: "num" }, ciCell(t.confidence)),
        h("td", { class: "num" }, ciCell(t.combined)),
        h("td", { class: "num" }, ciCell(t.gain, pt)),
        h("td", { class: "num" }, balanced(t)),
        h("td", { class: "num" }, exact(t)))), { textColumns: 2, wide: true }),
    notes.length ? h("ul", { class: "muted", id: "correctness-notes" }, notes.map((t) => h("li", {}, `${t.task} / ${t.kind}: ${t.note}`))) : null,
    div,
    h("p", { class: "muted" }, "Stratified cross-validated accuracy per task and kind (bold: above chance), beside the model's own confidence at the hole and both together; the red dash is chance. Gain: paired bootstrap over rows. Balanced: equal correct and incorrect rows, chance 50%. A kind opens its predictor."));
}

function dose(f, claims, plots) {
  const d = f.dose;
  if (d.reason) return section("dose", "(v) Ablation dose curve", claims, null, d.reason);
  const points = d.points;
  const byChange = [...points].sort((a, b) => b.change.estimate - a.change.estimate);
  const [best, worst] = [byChange[0], byChange[byChange.length - 1]];
  const div = h("div", { class: "findings-plot", id: "dose-plot" });
  const rules = [...new Set(points.map((p) => p.rule))];
  plots.push(() => window.Plotly.react(div, rules.map((rule, i) => {
    const pts = points.filter((p) => p.rule === rule);
    return { type: "scatter", mode: "lines+markers", name: rule, x: pts.map((p) => p.n), y: pts.map((p) => p.accuracy.estimate), line: { color: COLORS[i % COLORS.length] },
      error_y: { ...errorBars(pts.map((p) => p.accuracy)), color: COLORS[i % COLORS.length] }, customdata: pts.map((p) => ci(p.accuracy)), hovertemplate: `${rule}, n = %{x}: %{customdata}<extra></extra>` };
  }), { ...BASE_LAYOUT, height: 320, margin: { l: 56, r: 16, t: 16, b: 44 }, legend: { orientation: "h", y: -0.25 },
    // Ticks at the counts measured: a log axis's own minor labels ("2 3 4 … 9") read as data.
    xaxis: { type: "log", tickvals: [...new Set(points.map((p) => p.n))], title: { text: "heads ablated (n, log scale)" } },
    yaxis: { range: [-0.03, 1.03], tickformat: ".0%", zeroline: false, title: { text: "first-token accuracy" } }, showlegend: true,
    shapes: d.baseline_accuracy === null ? [] : [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: d.baseline_accuracy, y1: d.baseline_accuracy, line: { color: "#5f6b7a", dash: "dash", width: 1.5 } }],
    annotations: d.baseline_accuracy === null ? [] : [{ xref: "paper", x: 1, xanchor: "right", y: d.baseline_accuracy, yanchor: "bottom", text: `no ablation ${pct(d.baseline_accuracy)}`, showarrow: false, font: { color: "#5f6b7a" } }] }, plotConfig("findings-dose-curve")));
  return section("dose", "(v) Ablation dose curve", claims,
    !points.length ? "The experiment stored no points."
      : `Baseline accuracy ${pct(d.baseline_accuracy)} on ${int(d.scenarios)} held-out ${d.task} scenarios; ${best.change.estimate === worst.change.estimate
        ? `every point changes it by ${pt(best.change.estimate)}.`
        : `the largest change is ${pt(best.change.estimate)} (${best.rule}, n = ${best.n}), the smallest ${pt(worst.change.estimate)} (${worst.rule}, n = ${worst.n}).`}`,
    null,
    h("p", { class: "muted" }, `Experiment #${d.experiment_id}: ${d.balanced ? "balanced (as many baseline-correct as baseline-incorrect scenarios)" : "not balanced"}; heads zero-ablated at their output, ranked by ${d.ranked_by || "no ranking (random only)"}. Flips count scenarios (of ${int(d.scenarios)}) whose first token turned right or wrong.`),
    table("dose-table", ["rule", "n", "heads ablated", "accuracy [95% CI]", "change", "incorrect → correct", "correct → incorrect"], points.map((p) => h("tr", {},
      h("td", {}, p.rule), h("td", { class: "num" }, int(p.n)), h("td", { class: "num" }, int(p.n_heads)), h("td", { class: "num accuracy" }, ciCell(p.accuracy)),
      h("td", { class: "num" }, ciCell(p.change, pt)), h("td", { class: "num" }, ciCell(p.incorrect_to_correct, flips)), h("td", { class: "num" }, ciCell(p.correct_to_incorrect, flips))))),
    points.length ? div : null);
}

function facts(body) {
  const f = body.findings;
  const when = new Date(f.created_at);
  const tasks = Object.entries(f.inferences_per_task);
  const seconds = Object.entries(f.seconds || {});
  return h("dl", { class: "counts findings-facts", id: "findings-facts" },
    h("dt", {}, "model"), h("dd", {}, f.model),
    h("dt", {}, "embedder"), h("dd", {}, h("code", {}, f.embedder || "unknown")),
    h("dt", {}, "created"), h("dd", {}, Number.isNaN(when.getTime()) ? f.created_at : when.toLocaleString(), h("span", { class: "muted" }, ` · report job #${body.job_id}`)),
    h("dt", {}, "command"), h("dd", {}, h("code", {}, f.command)),
    h("dt", {}, "machine"), h("dd", {}, f.machine),
    h("dt", {}, "inferences per task"), h("dd", {}, tasks.length ? tasks.map(([t, n]) => `${t} ${int(n)}`).join(" · ") : "none"),
    seconds.length ? [h("dt", {}, "time per section"), h("dd", { class: "muted" }, seconds.map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(" · "))] : null);
}

/** The form that queues a new report, and the slot where its job's progress shows. */
function generator(body, onQueued) {
  const pending = body.status.job && !FINISHED.has(body.status.job.state);
  const reconstruct = h("input", { type: "checkbox", id: "gen-reconstruction", checked: true });
  const heads = h("input", { type: "number", id: "gen-stability", min: "0", max: "270", value: "27", style: "width:5em" });
  const experiment = h("input", { type: "number", id: "gen-experiment", min: "1", placeholder: "newest", style: "width:7em" });
  const button = h("button", { class: "primary", id: "generate", disabled: pending }, "Generate a new report");
  const slot = h("div", { id: "generate-status" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    const request = { reconstruction: reconstruct.checked, stability_heads: Number(heads.value || 0), experiment_id: experiment.value ? Number(experiment.value) : null };
    if (body.model) request.model = body.model;
    const job = await withStatus(slot, "Queuing the report", () => api("/api/findings", { method: "POST", body: request }));
    if (job) onQueued(job, slot);
    else button.disabled = false;
  });
  return { slot, node: h("section", { class: "panel", id: "findings-generate" },
    h("div", { class: "actions" },
      button,
      h("label", { class: "inline", title: "Evaluate the AP-MAE checkpoint on its test split: about 2 minutes on CPU" }, reconstruct, " measure reconstruction (about 2 min)"),
      h("label", { class: "inline", title: "Heads sampled for the two-halves cluster stability (two clusterings each)" }, "stability heads ", heads),
      h("label", { class: "inline", title: "Ablation experiment (its job id) for the dose curve" }, "experiment ", experiment),
      h("span", { class: "muted" }, "or run ", h("code", {}, "attnlens report"))),
    slot) };
}

export async function render(root, route) {
  const model = route.params.get("model") || "";
  const controller = new AbortController();
  const { signal } = controller;

  let notice = null; // the page's status line, kept in step with the report job it follows

  function follow(job, slot) {
    const show = (j) => {
      fill(slot, jobBlock(j));
      if (j.state === "succeeded") return;
      notice.hidden = false;
      fill(notice, FINISHED.has(j.state) ? `Report job #${j.id} was ${j.state}${j.error ? " (its error is below)" : ""}; you can generate a new report.`
        : `Report job #${j.id} ${j.state === "queued" ? "is waiting for the worker" : "is running"}; this page shows the report when it is done.`);
    };
    show(job);
    pollJob(job.id, show, { signal })
      .then((done) => {
        if (signal.aborted) return;
        if (done.state === "succeeded") load();
        else root.querySelector("#generate")?.removeAttribute("disabled"); // failed or cancelled: may try again
      })
      .catch((err) => { if (err.name !== "AbortError") fill(slot, errorBox(err)); });
  }

  async function load() {
    for (const div of root.querySelectorAll(".js-plotly-plot")) window.Plotly.purge(div);
    const status = h("div");
    fill(root, h("h1", {}, "Findings"), status);
    const body = await withStatus(status, "Loading the findings report", () => api(`/api/findings${query({ model })}`, { signal }));
    if (!body) return;
    const f = body.findings;
    const q = query({ model });
    const downloads = f
      ? h("span", { class: "downloads", id: "findings-downloads" }, "Download ",
        downloadLink(`/api/findings/report.md${q}`, "findings.md", "download-md", "Markdown"), " ",
        downloadLink(`/api/findings/report.html${q}`, "findings.html", "download-html", "HTML"))
      : h("span", { class: "muted" }, "Downloads appear once a report exists.");
    const gen = generator(body, follow);
    const plots = [];
    notice = h("div", { class: "notice", id: "findings-status", role: "status", hidden: body.status.state === "ready" }, withCode(body.status.message));
    fill(root,
      h("div", { class: "title-row" }, h("h1", {}, `Findings: the paper's claims measured on ${body.model}`), downloads),
      notice,
      gen.node,
      f ? [
        h("section", { class: "panel" }, facts(body),
          h("p", { class: "muted" }, "Every figure is as measured; nothing was tuned to the paper. The paper's statements are from its abstract (its tables are not public). Intervals are 95%: Wilson for accuracies, percentile bootstrap for differences and errors.")),
        reconstruction(f, body.claims, plots), generalisation(f, body.claims), recurrence(f, body.claims),
        correctness(f, body.claims, plots), dose(f, body.claims, plots),
      ] : h("section", { class: "panel", id: "findings-claims" }, h("h2", {}, "What a report measures"),
        h("p", { class: "muted" }, "Each of the paper's five claims, measured on this atlas and set beside the paper's statement:"),
        h("ol", { type: "i" }, Object.values(body.claims).map((text) => h("li", {}, text)))));
    if (body.status.job && !FINISHED.has(body.status.job.state)) follow(body.status.job, gen.slot);
    for (const draw of plots) await draw();
  }

  await load();
  return () => {
    controller.abort();
    for (const div of root.querySelectorAll(".js-plotly-plot")) window.Plotly.purge(div);
  };
}
