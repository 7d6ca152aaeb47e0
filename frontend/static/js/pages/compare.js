// #/compare?other=NAME: every head of the chosen model (rows) against every head of another model of the atlas
// (columns), as the distance between their AP-MAE embedding distributions (GET /api/cross-model), with the
// validation beside it: are heads that carry the same label in both models nearer each other than random
// pairs? Hover shows both heads and their labels; a click opens the other model's head.

import { api } from "../api.js";
import { errorBox, fill, h, int, num, withStatus } from "../dom.js";
import { atlasModels } from "../models.js";
import { plotConfig } from "../plots.js";
import { chosenModel, navigate, setState } from "../url.js";

// A head needs this many patterns of a task for the task to count in its distances, unless the URL says (`min=`).
const DEFAULT_MIN = 5;
const headHref = (name, model) => `#/head/${encodeURIComponent(name)}?model=${encodeURIComponent(model)}`;
const percent = (x) => `${(100 * x).toFixed(1)}%`;

function agreementTable(data) {
  const interval = (auc, row) => (auc === null ? (row.mean_same === null ? "no pair" : "every pair has it: no contrast") : `${num(auc.estimate, 2)} [${auc.low === null ? "?" : num(auc.low, 2)}, ${auc.high === null ? "?" : num(auc.high, 2)}]`);
  return h("table", { class: "data", id: "cross-agreement" },
    h("thead", {}, h("tr", {}, ...["label", `heads (${data.model} × ${data.other})`, "mean distance, same label", "mean distance, all pairs (baseline)",
      "AUC [95%] against random pairs (0.5 = chance)", "AUC [95%] against the head's other partners", "nearest head has the label", "chance"].map((t) => h("th", {}, t)))),
    h("tbody", {}, ...data.agreement.map((a) => h("tr", { dataset: { score: a.score } },
      h("td", {}, a.label), h("td", {}, `${a.heads_a} × ${a.heads_b}`),
      h("td", {}, a.mean_same === null ? "no pair" : num(a.mean_same, 3)), h("td", {}, num(a.mean_all, 3)),
      h("td", {}, interval(a.auc, a)), h("td", {}, interval(a.row_auc, a)), h("td", {}, `${a.nearest_hits} of ${a.heads_a}`), h("td", {}, percent(a.chance))))));
}

function drawMatrix(div, data) {
  const tags = (row) => (row.labels.length ? row.labels.join(", ") : "no label");
  const text = data.rows.map((r) => data.columns.map((c) =>
    `${data.model} ${r.name} (${tags(r)})<br>${data.other} ${c.name} (${tags(c)})`));
  const trace = {
    type: "heatmap",
    z: data.distances,
    x: data.columns.map((c) => c.name),
    y: data.rows.map((r) => r.name),
    text,
    hovertemplate: "%{text}<br>distance %{z:.3f}<extra></extra>",
    colorscale: "Viridis",
    reversescale: true, // near = bright
    colorbar: { title: { text: "distance" } },
    hoverongaps: false,
  };
  const layout = {
    margin: { l: 70, r: 20, t: 10, b: 70 },
    height: Math.min(900, 260 + 3 * data.rows.length),
    xaxis: { title: { text: `${data.other} heads` }, type: "category", showticklabels: data.columns.length <= 80 },
    yaxis: { title: { text: `${data.model} heads` }, type: "category", autorange: "reversed", showticklabels: data.rows.length <= 80 },
  };
  return window.Plotly.react(div, [trace], layout, plotConfig(`heads-${data.model}-vs-${data.other}`)).then(() => {
    div.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point) location.hash = headHref(point.x, data.other);
    });
  });
}

export async function render(root, route) {
  const status = h("div");
  fill(root, h("h1", {}, "Heads across models"), status);
  const models = await withStatus(status, "Loading the atlas's models", () => atlasModels());
  if (!models) return;
  const current = chosenModel() || models.find((m) => m.served)?.name;
  const others = models.filter((m) => m.name !== current);
  if (!others.length) {
    return void fill(root, h("h1", {}, "Heads across models"), h("div", { class: "notice", id: "compare-one-model", role: "status" },
      `The atlas holds one model (${current}). Build another model's atlas with the same AP-MAE checkpoint (`,
      h("code", {}, "attnlens atlas build --model gemma3-270m --corpus /usr/lib/jvm/openjdk-17/lib/src.zip"), ") to compare heads across models."));
  }
  const other = route.params.get("other") || others[0].name;
  const least = Math.max(2, Number.parseInt(route.params.get("min") || "", 10) || DEFAULT_MIN);
  const picker = h("select", { id: "compare-other" }, ...others.map((m) => h("option", { value: m.name, selected: m.name === other }, m.name)));
  const minimum = h("input", { id: "compare-min", type: "number", min: 2, max: 10000, step: 1, value: least });
  const go = () => navigate(["compare"], { other: picker.value, min: minimum.value === String(DEFAULT_MIN) ? "" : minimum.value });
  picker.addEventListener("change", go);
  minimum.addEventListener("change", go);
  const plot = h("div", { id: "cross-matrix", class: "plot" });
  const body = h("div");
  fill(root, h("h1", {}, "Heads across models"),
    h("p", {}, `Every head of ${current} (rows) against every head of `, picker, " (columns), on the tasks where both heads have at least ",
      minimum, " patterns."), status, body);
  const data = await withStatus(status, "Comparing the heads' embedding distributions", () =>
    api(`/api/cross-model?other=${encodeURIComponent(other)}&min_patterns=${least}`));
  if (!data) return;
  setState({ other });
  fill(body,
    h("div", { class: "facts" }, h("span", {}, `embedder ${data.embedder ?? "(not recorded)"}`),
      h("span", {}, `${int(data.rows.length)} × ${int(data.columns.length)} heads`), h("span", { title: data.tasks.join(", ") }, `${data.tasks.length} shared tasks`)),
    h("p", { class: "muted", id: "cross-method" }, data.method, ` Heads with fewer than ${data.min_patterns} patterns of a task leave that task out; a blank cell shares no task.`),
    h("section", { class: "panel" }, h("h2", {}, "Do heads with the same label lie nearer each other than random pairs?"),
      h("p", { class: "muted" }, "Labels come from each model's own head-type scores. AUC against random pairs: the chance that a same-label pair is nearer than a random pair of heads (0.5: no better than chance). Against the head's other partners: the chance that it is nearer than the same head of the first model with a random head of the second, so that a head far from everything (a sharp pattern among diffuse ones) is still judged by whether its own kind is the nearest it has. 95% bootstrap intervals over heads. A label neither model carries has no pair to test."),
      agreementTable(data)),
    h("section", { class: "panel" }, h("h2", {}, "Distance between every pair of heads"),
      h("p", { class: "muted" }, `Bright = near. Hover for both heads' labels; click a cell to open the ${data.other} head.`), plot));
  try {
    await drawMatrix(plot, data);
  } catch (err) {
    fill(plot, errorBox(err));
  }
  return () => window.Plotly.purge(plot);
}
