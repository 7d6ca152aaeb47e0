// #/heads: every head of the model as one point, its median of one head-type score against another's (or its
// layer or head index), coloured by a third or by its first label; a click opens the head's page. Under the
// plot, the labelled heads grouped by label, so that the page serves without the plot too. The scores, their
// titles and their thresholds come from GET /api/heads/scores: no list of scores is kept here.
// URL: #/heads?x=layer&y=previous_token_mass&color=label

import { api } from "../api.js";
import { categoryColour, categorySymbol } from "../map_traces.js";
import { fill, h, int, num, withStatus } from "../dom.js";
import { plotConfig } from "../plots.js";
import { navigate, setState } from "../url.js";

// Predictive importance: the head's largest mean |SHAP| over the tasks whose best head-ranking predictor
// lies above chance (null without one: drawn grey like a score that never applied).
const IMPORTANCE = "importance";
const POSITIONS = [["layer", "layer"], ["head", "head (index in its layer)"], [IMPORTANCE, "predictive importance (largest mean |SHAP| of a task above chance)"]];
const UNLABELLED = "unlabelled";
const GREY = "#999999";

/** What the profiles rest on: the scored inferences, and those left out until their scores are computed. */
export function coverage(overview) {
  return [
    h("span", { id: "heads-coverage" }, `profiles over ${int(overview.n_inferences)} scored mined inferences`),
    overview.n_inferences_unscored > 0
      ? h("span", { id: "heads-unscored", title: "their relational scores were stored before they existed" },
        `${int(overview.n_inferences_unscored)} inferences left out (scores not computed yet: run `, h("code", {}, "attnlens heads backfill"), " or queue a ", h("code", {}, "head_scores"), " job)")
      : null,
  ];
}

/** The atlas has no inference with its head scores: say so, and how to compute them. */
export function noScores(overview) {
  return h("div", { class: "notice", id: "no-head-scores", role: "status" },
    h("strong", {}, "No scored inferences yet. "),
    `The head profiles are medians of the head-type scores stored with every mined pattern, and none of ${overview.model}'s inferences has them`,
    overview.n_inferences_unscored ? ` (${int(overview.n_inferences_unscored)} inferences wait for theirs)` : "",
    ". Compute them with ", h("code", {}, "attnlens heads backfill"), " or a ", h("code", {}, "head_scores"), " job on the ",
    h("a", { href: "#/jobs" }, "Jobs page"), "; a new atlas build stores them as it goes.");
}

const valueOf = (head, key) =>
  key === "layer" ? head.layer : key === "head" ? head.head : key === IMPORTANCE ? head.importance : head.medians[key];

/** Axis and colour choices: the two positions, then every score by its title. */
function choices(specs) {
  return [...POSITIONS, ...specs.map((s) => [s.name, s.title])];
}

/** Every head's hover text: its name, labels, pattern count and every median (or that the score never applied). */
function hoverTexts(overview, specs) {
  return overview.heads.map((hd) => [
    `<b>${hd.name}</b> (click to open)`,
    `labels: ${hd.labels.length ? hd.labels.join(", ") : "none"}`,
    `predictive importance: ${hd.importance === null || hd.importance === undefined ? "none (no task's predictor above chance ranks it)" : `${num(hd.importance, 4)} (${hd.importance_task ?? "all tasks"})`}`,
    `medians over its ${int(hd.n_patterns)} patterns:`,
    ...specs.map((s) => `  ${s.title}: ${hd.medians[s.name] === null || hd.medians[s.name] === undefined ? "does not apply" : num(hd.medians[s.name], 3)}`),
  ].join("<br>"));
}

const BASE = { type: "scattergl", mode: "markers", hovertemplate: "%{text}<extra></extra>" };

/** The traces for one choice of axes and colour: one per label (colour by label), or one shaded by a number
 * plus a grey one for heads whose colouring score never applied. */
function traces(overview, specs, texts, state) {
  const heads = overview.heads;
  const pick = (rows, extra) => ({
    ...BASE, ...extra,
    x: rows.map((i) => valueOf(heads[i], state.x)), y: rows.map((i) => valueOf(heads[i], state.y)),
    text: rows.map((i) => texts[i]), customdata: rows.map((i) => heads[i].name),
  });
  const all = heads.map((_, i) => i);
  if (state.color === "label") {
    // Every head in some trace: a label the scores do not list (a newer server's) gets its own trace too.
    const order = [...new Set([...specs.map((s) => s.label), ...heads.flatMap((hd) => hd.labels), UNLABELLED])];
    const groupOf = (hd) => hd.labels[0] ?? UNLABELLED;
    return order.map((label, g) => [label, g, all.filter((i) => groupOf(heads[i]) === label)])
      .filter(([, , rows]) => rows.length)
      .map(([label, g, rows]) => pick(rows, {
        name: `${label} (${rows.length})`,
        marker: label === UNLABELLED ? { color: GREY, size: 7, symbol: "circle-open" } : { color: categoryColour(g), symbol: categorySymbol(g), size: 8 },
      }));
  }
  const applies = (i) => valueOf(heads[i], state.color) !== null && valueOf(heads[i], state.color) !== undefined;
  const known = all.filter(applies);
  const unknown = all.filter((i) => !applies(i));
  const title = choices(specs).find(([key]) => key === state.color)[1];
  const shaded = pick(known, {
    name: title, showlegend: false,
    marker: { size: 8, color: known.map((i) => valueOf(heads[i], state.color)), colorscale: "Viridis", showscale: true, colorbar: { title: { text: title, side: "right" }, thickness: 12 } },
  });
  return unknown.length ? [shaded, pick(unknown, { name: `${title}: does not apply (${unknown.length})`, marker: { color: GREY, size: 7, symbol: "x" } })] : [shaded];
}

/** Dotted lines at a score's label threshold and dashed at the typical head's median, on the axes showing a
 * score. A line outside the heads' values is left out (it would stretch the axis and squeeze every head into a
 * corner) and said in words instead. */
function guides(specs, overview, state) {
  const shapes = [];
  const annotations = [];
  const notes = [];
  for (const [axis, key] of [["x", state.x], ["y", state.y]]) {
    const spec = specs.find((s) => s.name === key);
    if (!spec) continue;
    const values = overview.heads.map((hd) => hd.medians[key]).filter((v) => v !== null && v !== undefined);
    const [lo, hi] = [Math.min(...values), Math.max(...values)];
    if (spec.threshold > hi) notes.push(`${spec.title}: the “${spec.label}” threshold ${spec.threshold} lies above every head's median (highest ${num(hi, 3)}).`);
    if (spec.threshold < lo) notes.push(`${spec.title}: every head's median reaches the “${spec.label}” threshold ${spec.threshold} (lowest ${num(lo, 3)}).`);
    const other = axis === "x" ? "y" : "x";
    const line = (value, dash, colour, text) => {
      if (value === null || value === undefined || value < lo || value > hi) return;
      shapes.push({ type: "line", [`${axis}ref`]: axis, [`${other}ref`]: "paper", [`${axis}0`]: value, [`${axis}1`]: value, [`${other}0`]: 0, [`${other}1`]: 1, line: { dash, color: colour, width: 1 } });
      annotations.push({ [`${axis}ref`]: axis, [`${other}ref`]: "paper", [axis]: value, [other]: 1, text, showarrow: false, font: { size: 10, color: colour },
        xanchor: axis === "x" ? "left" : "right", yanchor: axis === "x" ? "top" : "bottom", textangle: axis === "x" ? -90 : 0 });
    };
    line(spec.threshold, "dot", "#D55E00", `${spec.label} ≥ ${spec.threshold}`);
    line(overview.typical[key], "dash", "#5f6b7a", "typical head");
  }
  return { shapes, annotations, notes };
}

/** Label -> the heads carrying it (strongest median first), one row per score, with the unlabelled count. */
function labelTable(specs, overview) {
  const unlabelled = overview.heads.filter((hd) => hd.labels.length === 0).length;
  return h("table", { class: "compact", id: "labelled-heads" },
    h("thead", {}, h("tr", {}, h("th", {}, "label"), h("th", {}, "score (threshold on the head's median)"), h("th", { class: "num" }, "heads"), h("th", {}, "heads carrying it, highest median first (the median in brackets)"))),
    h("tbody", {},
      specs.map((s) => {
        const carrying = overview.heads.filter((hd) => hd.labels.includes(s.label)).sort((a, b) => b.medians[s.name] - a.medians[s.name]);
        return h("tr", { dataset: { label: s.label } },
          h("td", {}, h("strong", {}, s.label)),
          h("td", { title: s.formula }, `${s.title} ≥ ${s.threshold}`),
          h("td", { class: "num" }, int(carrying.length)),
          h("td", { class: "head-links" }, carrying.length === 0 ? h("span", { class: "muted" }, "no head")
            : carrying.map((hd, i) => [i ? ", " : "", h("a", { href: `#/head/${hd.name}`, title: `${s.title}: median ${num(hd.medians[s.name], 3)} over ${int(hd.n_patterns)} patterns` }, hd.name),
              h("span", { class: "muted" }, ` (${num(hd.medians[s.name], 2)})`)])));
      }),
      h("tr", { dataset: { label: UNLABELLED } }, h("td", {}, h("em", {}, UNLABELLED)), h("td", { class: "muted" }, "no median reaches its score's threshold"),
        h("td", { class: "num" }, int(unlabelled)), h("td", { class: "muted" }, "open any head from the plot"))));
}

function selectOf(id, label, options, value) {
  return h("label", {}, `${label} `, h("select", { id, "aria-label": label }, options.map(([key, text]) => h("option", { value: key, selected: key === value }, text))));
}

export async function render(root, route) {
  const status = h("div");
  fill(root, h("h1", {}, "Heads"), status);
  const loaded = await withStatus(status, "Loading every head's profile", () => Promise.all([api("/api/heads/scores"), api("/api/heads")]));
  if (!loaded) return;
  const [specs, overview] = loaded;
  const facts = h("div", { class: "facts" }, h("span", {}, `model ${overview.model}`),
    h("span", {}, `${overview.n_layers} layers × ${overview.n_heads} heads`), coverage(overview),
    h("a", { href: "#/compare", id: "compare-link" }, "compare with another model's heads →"));
  if (overview.n_inferences === 0 || overview.heads.length === 0) {
    fill(root, h("h1", {}, "Heads"), facts, noScores(overview));
    return;
  }
  const axes = choices(specs);
  const keys = new Set(axes.map(([key]) => key));
  const param = (name, fallback) => (keys.has(route.params.get(name)) || (name === "color" && route.params.get(name) === "label") ? route.params.get(name) : fallback);
  const state = { x: param("x", "layer"), y: param("y", specs[0].name), color: param("color", "label") };
  const titleOf = (key) => {
    const spec = specs.find((s) => s.name === key);
    return spec ? `${spec.title} (head's median)` : axes.find(([k]) => k === key)[1];
  };

  // Layer and head are whole numbers: ticks at whole steps only (every one on a small grid, fewer on 40 x 48).
  const whole = (key) => (key === "layer" || key === "head" ? { dtick: Math.max(1, Math.ceil((key === "layer" ? overview.n_layers : overview.n_heads) / 16)) } : {});
  const texts = hoverTexts(overview, specs);
  const plot = h("div", { id: "heads-plot", class: "heads-plot" });
  const notes = h("div", { class: "muted", id: "heads-notes", role: "status" });
  const controls = h("div", { class: "filters" },
    selectOf("heads-x", "x axis", axes, state.x), selectOf("heads-y", "y axis", axes, state.y),
    selectOf("heads-color", "colour by", [["label", "label (the first, strongest)"], ...axes], state.color));

  const draw = () => {
    // A score that never applied to a head leaves it without a place on that axis: say how many are not drawn.
    const off = overview.heads.filter((hd) => [state.x, state.y].some((k) => valueOf(hd, k) === null || valueOf(hd, k) === undefined)).length;
    const { shapes, annotations, notes: said } = guides(specs, overview, state);
    fill(notes, [off ? `${int(off)} of ${int(overview.heads.length)} heads are not drawn: a score on an axis never applied to their inputs.` : null, ...said].filter(Boolean).map((t) => h("p", {}, t)));
    return window.Plotly.react(plot, traces(overview, specs, texts, state), {
      margin: { l: 60, r: 20, t: 20, b: 50 }, height: 560, hovermode: "closest",
      xaxis: { title: { text: titleOf(state.x) }, zeroline: false, automargin: true, ...whole(state.x) }, yaxis: { title: { text: titleOf(state.y) }, zeroline: false, automargin: true, ...whole(state.y) },
      // The legend names the label groups even when every head shares one (Plotly hides a one-trace legend).
      shapes, annotations, showlegend: true, legend: { title: { text: state.color === "label" ? "first label (heads)" : "" }, itemsizing: "constant" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
    }, plotConfig(`heads-${state.x}-${state.y}`));
  };
  controls.addEventListener("change", (event) => {
    const which = { "heads-x": "x", "heads-y": "y", "heads-color": "color" }[event.target.id];
    if (!which) return;
    state[which] = event.target.value;
    setState({ x: state.x, y: state.y, color: state.color });
    draw();
  });

  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, "Heads"), controls),
    facts,
    h("section", { class: "panel" }, plot, notes,
      h("p", { class: "muted" }, `One point per head: its median of each score over its patterns in the ${int(overview.n_inferences)} scored inferences. `,
        "Dotted red: the score's label threshold; dashed grey: the typical head's median (the median over heads). Click a point to open its head.")),
    h("section", { class: "panel" }, h("h2", {}, "Labelled heads, by label"),
      h("p", { class: "muted" }, "A label is a hypothesis from these inputs: the head's median of the score reaches a threshold fixed before any atlas was built. Open a head to see the evidence and examples."),
      labelTable(specs, overview)));
  await draw();
  plot.on("plotly_click", (event) => {
    const name = event.points?.[0]?.customdata;
    if (name) navigate(["head", name]);
  });
  return () => window.Plotly.purge(plot);
}
