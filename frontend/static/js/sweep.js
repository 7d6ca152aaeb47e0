// The ablation sweep of one inference (Intervene page): ablate each head alone and each whole layer as a job,
// then shade the grid by each head's effect and list every head and layer in a sortable table whose rows
// toggle that head (or layer) for re-generation. URL: ...&sweep=kl (the metric; p(expected) by default).

import { api, has } from "./api.js";
import { setState } from "./url.js";
import { errorBox, fill, h, int, notAvailable, num, showToken, withStatus } from "./dom.js";
import { jobBlock, pollJob } from "./jobs.js";

const METRICS = {
  dp: { label: "change in p(expected)", field: "delta_p_expected" },
  kl: { label: "KL at the hole", field: "kl" },
};
const SHOWN_ROWS = 25;

// Effects of one head are often far below 1e-4 (a tiny model's, or a weak head's): below 0.001 a value is shown
// with two significant digits, so that it does not read as 0.0000.
const value = (x) => (x === null || x === undefined ? "–" : x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(1) : num(x, 4));
const signed = (x) => (x === null || x === undefined ? "–" : `${x > 0 ? "+" : ""}${value(x)}`);

/** Grid shading: each head's value over the largest |value| of any head (so the strongest is ±1). Removing a
 * head that lowers p(expected) shades vermillion, raising it blue; KL (no sign) shades by size in vermillion. */
function heatOf(rows, metric) {
  const field = METRICS[metric].field;
  const heads = rows.filter((r) => r.head !== null && r[field] !== null);
  const largest = Math.max(0, ...heads.map((r) => Math.abs(r[field])));
  if (!largest) return { values: new Map(), largest, at: null };
  const at = heads.find((r) => Math.abs(r[field]) === largest).target;
  const sign = metric === "kl" ? -1 : 1;
  return { values: new Map(heads.map((r) => [r.target, (sign * r[field]) / largest])), largest, at };
}

function sweepTable(sweep, metric, toggle) {
  const state = { key: METRICS[metric].field, desc: true, all: false };
  const table = h("table", { class: "compact sweep-table", id: "sweep-table" });
  const more = h("div");
  const columns = [
    ["target", "head / layer"], ["delta_p_expected", "Δ p(expected)"], ["p_expected", "p(expected)"], ["kl", "KL (nats)"],
    ["top_token", "first token"], ["flipped", "flips"],
  ];
  const sortValue = (row, key) => (key === "delta_p_expected" || key === "kl" ? Math.abs(row[key] ?? -1) : row[key]);
  const draw = () => {
    const rows = [...sweep.rows].sort((a, b) => {
      const x = sortValue(a, state.key);
      const y = sortValue(b, state.key);
      const order = typeof x === "string" ? String(x).localeCompare(String(y)) : Number(x) - Number(y);
      return (state.desc ? -order : order) || a.layer - b.layer || (a.head ?? -1) - (b.head ?? -1);
    });
    const shown = state.all ? rows : rows.slice(0, SHOWN_ROWS);
    fill(table,
      h("thead", {}, h("tr", {}, columns.map(([key, label]) => h("th", { "aria-sort": state.key === key ? (state.desc ? "descending" : "ascending") : "none" },
        h("button", { class: "sort", dataset: { sort: key }, title: key === "delta_p_expected" || key === "kl" ? "sorted by size" : null, onclick: () => {
          state.desc = state.key === key ? !state.desc : true;
          state.key = key;
          draw();
        } }, label, state.key === key ? (state.desc ? " ▼" : " ▲") : ""))))),
      h("tbody", {}, shown.map((r) => h("tr", { class: "clickable", dataset: { target: r.target }, title: `click to toggle ${r.target} for re-generation`, onclick: () => toggle(r) },
        h("td", {}, r.head === null ? h("strong", {}, `${r.target} (all heads)`) : r.target),
        h("td", { class: "num" }, signed(r.delta_p_expected)), h("td", { class: "num" }, value(r.p_expected)), h("td", { class: "num" }, value(r.kl)),
        h("td", { title: `token id ${r.top_token_id}` }, h("code", {}, r.top_token ? showToken(r.top_token) : "∅ (part of a character)")), h("td", {}, r.flipped ? h("strong", { class: "flipped" }, "✗ flips") : "")))));
    fill(more, rows.length > SHOWN_ROWS
      ? h("button", { class: "small", id: "sweep-all", onclick: () => { state.all = !state.all; draw(); } }, state.all ? `show the first ${SHOWN_ROWS}` : `show all ${rows.length} rows`)
      : null);
  };
  draw();
  return h("div", {}, table, more);
}

function sweepResult(sweep, { grid, toggle, metric, onMetric }) {
  const heads = sweep.rows.filter((r) => r.head !== null).length;
  const layers = sweep.rows.length - heads;
  const expected = sweep.expected_token === null ? null : JSON.stringify(sweep.expected_token);
  const usable = expected === null ? ["kl"] : ["dp", "kl"];
  if (!usable.includes(metric)) metric = "kl";
  const choice = h("select", { id: "sweep-metric", "aria-label": "sweep metric" }, usable.map((m) => h("option", { value: m, selected: m === metric }, METRICS[m].label)));
  choice.addEventListener("change", () => onMetric(choice.value));
  const shade = h("input", { type: "checkbox", id: "sweep-shade", checked: true });
  const heat = heatOf(sweep.rows, metric);
  const paint = () => grid.setHeat(shade.checked ? heat.values : null);
  shade.addEventListener("change", paint);
  paint();
  const scale = heat.at === null
    ? "No head changed it."
    : `Shade: each head's ${METRICS[metric].label} over the largest, ${metric === "kl" ? value(heat.largest) : signed(heat.values.get(heat.at) * heat.largest)} (${heat.at}); ${metric === "kl" ? "darker vermillion: a larger change" : "vermillion: removing the head lowers p(expected), blue: raises it"}.`;
  return h("div", { dataset: { flipped: String(sweep.flipped) } },
    h("p", { id: "sweep-summary" },
      expected === null ? "This inference has no expected token, so p(expected) is not measured; " : `Un-ablated p(${expected}) = ${value(sweep.baseline_p_expected)}; `,
      `greedy first token ${JSON.stringify(sweep.baseline_top_token)}. `,
      h("strong", {}, `${int(sweep.flipped)} of ${int(sweep.rows.length)}`), ` ablations (${int(heads)} heads alone, ${int(layers)} whole layers) flip the first token.`),
    h("div", { class: "actions" }, h("label", {}, "metric ", choice), h("label", { class: "inline" }, shade, " shade the grid")),
    h("p", { class: "muted", id: "sweep-scale" }, scale),
    sweepTable(sweep, metric, toggle));
}

/** The sweep panel. `grid`: the page's HeadGrid; `toggle(row)`: add or remove a row's head or layer;
 * `onRows(Map target -> row)` hears each sweep shown (the grid's tooltip names a head's effect). */
export async function sweepPanel(inf, { grid, toggle, signal, metric = "dp", onRows }) {
  const panel = h("section", { class: "panel", id: "sweep" }, h("h2", {}, "Sweep: ablate each head alone"));
  if (!(await has("/api/inferences/{inference_id}/sweeps", "post"))) {
    panel.append(notAvailable("The ablation sweep"));
    return panel;
  }
  const jobSlot = h("div", { id: "sweep-job" });
  const resultSlot = h("div", { id: "sweep-result" });
  let current = metric;
  let latest = null;
  const show = (sweep) => {
    latest = sweep;
    onRows?.(new Map(sweep.rows.map((r) => [r.target, r])));
    fill(resultSlot, sweepResult(sweep, { grid, toggle, metric: current, onMetric: (m) => {
      current = m;
      setState({ sweep: m === "dp" ? "" : m });
      show(latest);
    } }));
  };
  const follow = async (jobId) => {
    try {
      const job = await pollJob(jobId, (j) => fill(jobSlot, jobBlock(j)), { signal, everyMs: 1500 });
      if (job.state !== "succeeded") return;
      const sweep = await api(`/api/inferences/${inf.id}/sweeps/latest`, { signal });
      fill(jobSlot);
      run.textContent = "Run again";
      show(sweep);
    } catch (err) {
      if (err.name !== "AbortError") fill(jobSlot, errorBox(err));
    }
  };
  const run = h("button", { id: "sweep-run", onclick: async () => {
    const job = await withStatus(jobSlot, "Queueing the sweep", () => api(`/api/inferences/${inf.id}/sweeps`, { method: "POST", signal }));
    if (job) follow(job.id);
  } }, "Run a sweep");
  panel.append(
    h("p", { class: "muted" }, "One forward pass per head, then one per whole layer: what removing each alone does to the next-token distribution at the hole (p(expected), KL divergence, whether the greedy first token flips). It runs as a job, about 0.3 s a pass on a 2-core CPU; the page follows it."),
    h("div", { class: "actions" }, run), jobSlot, resultSlot);
  try {
    const sweep = await api(`/api/inferences/${inf.id}/sweeps/latest`, { signal });
    if (sweep.job === null) return panel; // no sweep of this inference yet: the button is for that
    run.textContent = "Run again";
    if (sweep.job.state === "succeeded") show(sweep);
    else if (sweep.job.state === "queued" || sweep.job.state === "running") follow(sweep.job.id);
    else fill(jobSlot, jobBlock(sweep.job)); // the last one failed or was cancelled: say so
  } catch (err) {
    if (err.name !== "AbortError") fill(jobSlot, errorBox(err));
  }
  return panel;
}

/** A head's sweep row in one tooltip line. */
export function sweepLine(row) {
  if (!row) return null;
  return `sweep: Δp ${signed(row.delta_p_expected)} · KL ${value(row.kl)}${row.flipped ? ` · flips to ${JSON.stringify(row.top_token)}` : ""}`;
}
