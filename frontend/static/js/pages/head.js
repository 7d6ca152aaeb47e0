// #/head/L3H5: what one head does, as far as the head-type scores tell. Its labels with their evidence (each a
// hypothesis: the caveat says so first), every score's distribution over the head's patterns beside the
// typical head's median, examples of its patterns by decile of a score (the attention drawn over the code on
// demand: each draw recomputes the pattern on the model), and the tasks whose predictors lean on it.
// URL: #/head/L3H5?score=previous_token_mass&decile=10

import { api, decodeBytes, query } from "../api.js";
import { thumbnailCanvas } from "../colors.js";
import { bringIntoView, errorBox, fill, h, int, loading, num, showToken, verdict, withStatus } from "../dom.js";
import { importantHeads, predictorAccuracy, signedShap } from "../important_heads.js";
import { notYet } from "../jobs.js";
import { notesPanel } from "../notes.js";
import { clusterTable, scores } from "../cluster_table.js";
import { attentionOverlay } from "../overlay.js";
import { isServed } from "../models.js";
import { setState } from "../url.js";
import { coverage, noScores } from "./heads.js";

const TOP_HEADS = 10;
const EXAMPLES = 6;
const WITH_OVERLAY = 3; // the first few examples only: each overlay recomputes its pattern on the model
const SVG = "http://www.w3.org/2000/svg";
const STRIP = { width: 200, height: 24, pad: 4 };

const isNumber = (x) => x !== null && x !== undefined;
// Four significant digits for a pattern's value and a decile's bounds: a fixed 3 decimals shows 0.99983 (a
// broad head's entropy) as 1.000, and a bound "> 1.000" under values that read 1.000.
const sig = (x) => (isNumber(x) ? String(Number(x.toPrecision(4))) : "–");

/** An SVG element (h() makes HTML elements, which an <svg> does not draw). */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/** The 9 deciles of a score over the head's patterns on [0, 1]: the 10th-90th and 30th-70th percentile bands,
 * a tick per decile, the median, the typical head's median (dashed) and the label threshold (a notch on top). */
function decileStrip(score, spec) {
  const { width, height, pad } = STRIP;
  const x = (v) => (pad + Math.min(1, Math.max(0, v)) * (width - 2 * pad)).toFixed(1);
  const d = score.deciles;
  const band = (lo, hi, cls) => svg("rect", { class: cls, x: x(lo), y: 7, width: Math.max(1, x(hi) - x(lo)), height: 10 });
  const parts = [
    svg("title", {}, `deciles (10th…90th percentile) of ${spec.title} over ${score.n_applicable} patterns: ${d.map((v) => num(v, 3)).join(", ")}; `
      + `median ${num(score.median, 3)}; typical head's median ${num(score.typical, 3)}; label threshold ${spec.threshold}`),
    svg("line", { class: "axis", x1: x(0), x2: x(1), y1: 12, y2: 12 }),
    band(d[0], d[8], "band-outer"), band(d[2], d[6], "band-inner"),
    ...d.map((v) => svg("line", { class: "decile", x1: x(v), x2: x(v), y1: 8, y2: 16 })),
    svg("path", { class: "threshold", d: `M${x(spec.threshold) - 4},0 L${Number(x(spec.threshold)) + 4},0 L${x(spec.threshold)},5 Z` }),
    isNumber(score.typical) ? svg("line", { class: "typical", x1: x(score.typical), x2: x(score.typical), y1: 1, y2: height - 1 }) : null,
    svg("line", { class: "median", x1: x(score.median), x2: x(score.median), y1: 4, y2: height - 4 }),
  ].filter(Boolean);
  return svg("svg", { class: "decile-strip", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `deciles of ${spec.title} over [0, 1]` }, ...parts);
}

function stripLegend() {
  return h("div", { class: "legend strip-legend" },
    h("span", { class: "key key-band-outer" }, "10th–90th percentile"), h("span", { class: "key key-band-inner" }, "30th–70th"),
    h("span", { class: "key key-median" }, "this head's median"), h("span", { class: "key key-typical" }, "typical head's median (the baseline)"),
    h("span", { class: "key key-threshold" }, "label threshold"), h("span", {}, "strip: 0 at the left, 1 at the right"));
}

/** The labels the head carries, each with the evidence behind it. */
function labelsPanel(head, specOf) {
  if (head.labels.length === 0)
    return h("p", { class: "muted", id: "head-labels" }, "No label: no score's median reaches its threshold. The profile below says what this head does on these inputs.");
  return h("table", { class: "compact head-labels", id: "head-labels" },
    h("thead", {}, h("tr", {}, ["label", "score", "this head's median", "label threshold", "typical head's median (baseline)", "patterns it applies to"].map((t, i) => h("th", { class: i > 1 ? "num" : null }, t)))),
    h("tbody", {}, head.labels.map((l) => h("tr", { dataset: { label: l.label } },
      h("td", {}, h("strong", {}, l.label)),
      h("td", { title: specOf.get(l.score)?.formula }, specOf.get(l.score)?.title ?? l.score),
      h("td", { class: "num" }, num(l.median, 3)),
      h("td", { class: "num" }, `≥ ${l.threshold}`),
      h("td", { class: "num" }, num(l.typical, 3)),
      h("td", { class: "num" }, `${int(l.n_applicable)} of ${int(head.n_patterns)}`)))));
}

/** One row per score (in GET /api/heads/scores order): patterns it applies to, median, deciles, baseline. */
function profileTable(head, specs) {
  const byName = new Map(head.scores.map((s) => [s.name, s]));
  return h("table", { class: "compact profile-table", id: "profile-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "score (what it averages; hover for the formula)"), h("th", { class: "num" }, "patterns it applies to"),
      h("th", { class: "num" }, "this head's median"), h("th", {}, "deciles over its patterns, on [0, 1]"), h("th", { class: "num" }, "typical head's median"))),
    h("tbody", {}, specs.map((spec) => {
      const score = byName.get(spec.name);
      const about = h("td", { title: spec.formula },
        h("div", {}, h("strong", {}, spec.title), score?.labelled ? h("span", { class: "badge labelled" }, spec.label) : null),
        h("div", { class: "muted small formula" }, spec.formula),
        h("div", { class: "muted small" }, `label “${spec.label}” at a median ≥ ${spec.threshold}${spec.relational ? " · only where the input has such token pairs" : ""}`));
      if (!score || score.n_applicable === 0 || !isNumber(score.median))
        return h("tr", { dataset: { score: spec.name, applies: "false" } }, about,
          h("td", { class: "not-applicable", colspan: 4 }, `does not apply to these inputs: none of this head's ${int(head.n_patterns)} patterns has what the score measures`));
      return h("tr", { dataset: { score: spec.name, applies: "true" }, class: score.labelled ? "labelled" : null }, about,
        h("td", { class: "num" }, `${int(score.n_applicable)} of ${int(head.n_patterns)}`),
        h("td", { class: "num median", title: `median over ${int(score.n_applicable)} patterns` }, num(score.median, 3)),
        h("td", {}, score.deciles ? decileStrip(score, spec) : h("span", { class: "muted" }, "–")),
        h("td", { class: "num" }, num(score.typical, 3)));
    })));
}

/** The tasks whose predictors rank this head among their top heads (GET /api/predictors/heads). */
async function mattersPanel(slot, name) {
  const rows = await withStatus(slot, "Loading the predictors' head rankings", () => importantHeads(TOP_HEADS));
  if (!rows) return;
  if (rows.length === 0)
    return fill(slot, h("p", { class: "muted", id: "head-matters" }, "No predictors trained yet: train them with ", h("code", {}, "attnlens predictors train"), " (the demo atlas trains them after its build)."));
  const hits = rows.flatMap((r) => {
    const at = r.heads.findIndex((x) => x.name === name);
    return at < 0 ? [] : [{ r, rank: at + 1, x: r.heads[at] }];
  });
  if (hits.length === 0)
    return fill(slot, h("p", { class: "muted", id: "head-matters" }, `${name} is not among the top ${TOP_HEADS} heads of any task's predictor (${rows.length} tasks have one).`));
  fill(slot, h("table", { class: "compact", id: "head-matters" },
    h("thead", {}, h("tr", {}, h("th", {}, "task"), h("th", { class: "num" }, `rank among its top ${TOP_HEADS} heads`), h("th", { class: "num" }, "mean |SHAP| (signed mean)"), h("th", {}, "predictor: CV accuracy [95% CI]"))),
    h("tbody", {}, hits.map(({ r, rank, x }) => h("tr", { class: r.above_chance ? null : "muted", dataset: { task: r.task ?? "" } },
      h("td", {}, r.task ?? "all"),
      h("td", { class: "num" }, `${rank}`),
      h("td", { class: "num" }, h("a", { href: `#/predictor/${r.predictor_id}?head=${name}`, title: "this head on the predictor's page" }, num(x.mean_abs_shap, 4)), ` (${signedShap(x.mean_shap)})`),
      h("td", {}, h("a", { href: `#/predictor/${r.predictor_id}` }, predictorAccuracy(r)), r.above_chance ? null : ` · not above chance`))))),
  h("p", { class: "muted" }, "Mean |SHAP|: how far this head's pattern moves the predictor's log-odds of a correct completion. Grey rows: the predictor is not distinguishable from chance, so its ranking is no evidence."));
}

/** The decile's range of values, as the examples endpoint bounds it: (low, high]. */
function rangeText(result) {
  if (!isNumber(result.low) && !isNumber(result.high)) return "all values";
  if (!isNumber(result.low)) return `values ≤ ${sig(result.high)}`;
  if (!isNumber(result.high)) return `values > ${sig(result.low)}`;
  return `values in (${sig(result.low)}, ${sig(result.high)}]`;
}

function decileName(d) {
  return d === 10 ? "10 (the highest tenth)" : d === 1 ? "1 (the lowest tenth)" : String(d);
}

/** Examples of the head's patterns by decile of a score, with the attention over the code on demand. */
function examplesPanel(head, specs, route, overlays = true) {
  const applicable = new Set(head.scores.filter((s) => s.n_applicable > 0 && s.deciles).map((s) => s.name));
  const specOf = new Map(specs.map((s) => [s.name, s]));
  const asked = route.params.get("score");
  const labelScore = head.labels.map((l) => l.score).find((s) => applicable.has(s));
  const state = {
    score: applicable.has(asked) ? asked : labelScore ?? specs.map((s) => s.name).find((s) => applicable.has(s)),
    decile: Math.min(10, Math.max(1, Math.round(Number(route.params.get("decile")) || 10))),
  };
  const element = h("section", { class: "panel", id: "head-examples-panel" }, h("h2", {}, "Examples by decile of a score"));
  if (!state.score) {
    element.append(h("p", { class: "muted" }, "No score applies to this head's patterns: there are no examples to show."));
    return { element, load: async () => {}, stop: () => {} };
  }
  const scoreSelect = h("select", { id: "example-score", "aria-label": "score" },
    specs.map((s) => h("option", { value: s.name, selected: s.name === state.score, disabled: !applicable.has(s.name) }, applicable.has(s.name) ? s.title : `${s.title} (does not apply)`)));
  const decileSelect = h("select", { id: "example-decile", "aria-label": "decile" },
    [10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map((d) => h("option", { value: d, selected: d === state.decile }, decileName(d))));
  const status = h("div");
  const summary = h("p", { class: "muted", id: "examples-summary" });
  const list = h("div", { class: "head-examples", id: "head-examples" });
  const overlaySlot = h("div", { id: "example-overlay", class: "example-overlay" });
  element.append(
    h("div", { class: "filters" }, h("label", {}, "score ", scoreSelect), h("label", {}, "decile ", decileSelect)),
    h("p", { class: "muted" }, "Decile 10 holds the patterns where this head scores highest: the evidence behind a label. A low decile shows what the head does when the score is low."),
    status, summary, list, overlaySlot);

  let controller = new AbortController();
  const patterns = new Map(); // id -> the full pattern, so that a second click on one example draws at once

  async function showOverlay(example, card) {
    list.querySelectorAll(".head-example.overlaid").forEach((c) => c.classList.remove("overlaid"));
    card.classList.add("overlaid");
    const wait = h("div");
    fill(overlaySlot, h("h3", {}, `${head.name} on the code of pattern #${example.id} (inference #${example.inference_id})`), wait);
    const signal = controller.signal;
    const pattern = patterns.get(example.id) ?? await withStatus(wait, "Recomputing the pattern on the model", (onWait) => api(`/api/patterns/${example.id}`, { signal, onWait }));
    if (!pattern || signal.aborted) return;
    patterns.set(example.id, pattern);
    fill(overlaySlot, h("h3", {}, `${head.name} on the code of pattern #${example.id} (inference #${example.inference_id})`), attentionOverlay(pattern));
    bringIntoView(overlaySlot);
  }

  function card(example, i) {
    const spec = specOf.get(state.score);
    const node = h("div", { class: "head-example", dataset: { pattern: example.id } },
      thumbnailCanvas(decodeBytes(example.thumbnail), example.thumbnail_size, 0, 88),
      h("div", { class: "example-facts" },
        h("div", {}, h("strong", { class: "example-value" }, `${spec.title}: ${sig(example.value)}`)),
        h("div", {}, `task ${example.task ?? "pasted"}`),
        h("div", {}, "first token ", verdict(example.first_token_correct)),
        h("div", { class: "example-target" }, "hole ", h("code", {}, showToken(example.target_text ?? ""))),
        h("div", {}, h("a", { class: "pattern-link", href: `#/pattern/${example.id}`, title: "the pattern in its inference's gallery" }, `pattern #${example.id}`), " · ",
          h("a", { class: "inference-link", href: `#/inference/${example.inference_id}?head=${head.name}` }, `inference #${example.inference_id}`)),
        i < WITH_OVERLAY && overlays ? h("button", { class: "small show-overlay", type: "button", onclick: () => showOverlay(example, node) }, "show attention on the code") : null));
    return node;
  }

  async function load() {
    controller.abort();
    controller = new AbortController();
    const { signal } = controller;
    fill(overlaySlot);
    const result = await withStatus(status, "Loading examples", () =>
      api(`/api/heads/${encodeURIComponent(head.name)}/examples${query({ score: state.score, decile: state.decile, limit: EXAMPLES })}`, { signal }));
    if (!result || signal.aborted) return;
    const spec = specOf.get(result.score);
    const shown = result.examples.length;
    fill(summary, `Decile ${result.decile} of ${head.name}'s ${spec.title} (${rangeText(result)}): ${int(result.n_in_decile)} pattern${result.n_in_decile === 1 ? "" : "s"}; `,
      shown === 0 ? "none to show." : shown === result.n_in_decile ? "all shown, highest value first." : `the ${shown} with the highest value shown, highest first.`);
    fill(list, result.examples.map(card));
  }
  const change = () => {
    state.score = scoreSelect.value;
    state.decile = Number(decileSelect.value);
    setState({ score: state.score, decile: state.decile });
    load();
  };
  scoreSelect.addEventListener("change", change);
  decileSelect.addEventListener("change", change);
  return { element, load, stop: () => controller.abort() };
}

/** The heads before and after this one in layer-major order (none past either end). */
function neighbours(head, overview) {
  const at = head.layer * overview.n_heads + head.head;
  const nameAt = (i) => `L${Math.floor(i / overview.n_heads)}H${i % overview.n_heads}`;
  const prev = at > 0 ? nameAt(at - 1) : null;
  const next = at < overview.n_layers * overview.n_heads - 1 ? nameAt(at + 1) : null;
  return h("nav", { class: "head-nav", "aria-label": "other heads" },
    prev ? h("a", { href: `#/head/${prev}`, id: "previous-head", rel: "prev" }, `← ${prev}`) : h("span", { class: "muted" }, "first head"), " · ",
    h("a", { href: "#/heads", id: "all-heads" }, "all heads (scatter)"), " · ",
    next ? h("a", { href: `#/head/${next}`, id: "next-head", rel: "next" }, `${next} →`) : h("span", { class: "muted" }, "last head"));
}

/** The head's clusters in the newest clustering, with labels, typical members and correctness. */
async function clustersPanel(slot, name) {
  try {
    // No clustering yet is a state of the atlas, not a failure: say which job makes it, and fill in when done.
    const waiting = await notYet("atlas_cluster", () => clustersPanel(slot, name));
    if (waiting) return void fill(slot, waiting);
    const [clusters, specs] = await Promise.all([api(`/api/heads/${encodeURIComponent(name)}/clusters`), scores()]);
    fill(slot, clusters.length ? clusterTable(clusters, specs) : h("p", { class: "muted" }, "This head has no clusters."));
  } catch (err) {
    // 404: no clustering yet, a state of the atlas; the message says how to make one.
    fill(slot, err.status === 404 ? h("p", { class: "muted", id: "head-clusters-none" }, err.message) : errorBox(err));
  }
}

/** The heads of this model whose patterns point most the same way in AP-MAE's space. */
async function relatedPanel(slot, name) {
  try {
    const related = await api(`/api/heads/${encodeURIComponent(name)}/related?k=8`);
    fill(slot, h("p", { class: "muted" }, "Cosine of the heads' mean AP-MAE embeddings over the atlas (1 = the same mean direction); a shared direction is a hint that two heads attend alike, not proof."),
      h("ol", { class: "related-heads", id: "related-heads" }, related.map((r) =>
        h("li", { dataset: { head: r.name } }, h("a", { href: `#/head/${r.name}` }, r.name), ` ${num(r.similarity, 3)}`,
          r.labels.length ? h("span", { class: "muted" }, ` · ${r.labels.join(", ")}`) : null))));
  } catch (err) {
    fill(slot, errorBox(err));
  }
}

/** The nearest heads of every other model of the atlas embedded by the same AP-MAE checkpoint. */
async function acrossPanel(slot, name) {
  try {
    const groups = await api(`/api/heads/${encodeURIComponent(name)}/related-across?k=5`);
    if (!groups.length) {
      return void fill(slot, h("p", { class: "muted", id: "related-across-none" },
        "No other model of this atlas is embedded with the same AP-MAE checkpoint. Build one (",
        h("code", {}, "attnlens atlas build --model gemma3-270m --corpus /usr/lib/jvm/openjdk-17/lib/src.zip"), ") to see this head's nearest heads in it."));
    }
    fill(slot, h("p", { class: "muted" }, "Distance between the two heads' AP-MAE embedding distributions, task by task (0 = the same; the typical distance is the median over every pair of heads of the two models). Near heads attend alike on these inputs; that is a hint, not proof that they compute the same thing."),
      ...groups.map((g) => h("div", { class: "related-across", dataset: { model: g.model } },
        h("h3", {}, g.model, " ", h("a", { href: `#/compare?other=${encodeURIComponent(g.model)}`, class: "muted" }, "(head × head matrix)")),
        g.typical_distance === null
          ? h("p", { class: "muted too-few" }, `No head pair of the two models shares a task with at least ${g.min_patterns} patterns each: too few patterns to compare yet.`)
          : h("p", { class: "muted" }, `typical distance ${num(g.typical_distance, 3)}`),
        h("ol", { class: "related-heads" }, g.heads.map((r) =>
          h("li", { dataset: { head: r.name } }, h("a", { href: `#/head/${r.name}?model=${encodeURIComponent(g.model)}` }, r.name), ` ${num(r.distance, 3)}`,
            r.labels.length ? h("span", { class: "muted" }, ` · ${r.labels.join(", ")}`) : null))))));
  } catch (err) {
    fill(slot, errorBox(err));
  }
}

export async function render(root, route) {
  const name = route.parts[1] || "";
  const status = h("div");
  const back = h("p", {}, h("a", { href: "#/heads" }, "← all heads"));
  fill(root, h("h1", {}, `Head ${name}`), status);
  // The overview names the grid (for previous / next) and says whether any inference is scored at all; the
  // head's own profile is a 404 both for a head outside the grid and before any score is computed.
  const loaded = await withStatus(status, "Loading the head's profile", () =>
    Promise.all([api("/api/heads/scores"), api("/api/heads"), api(`/api/heads/${encodeURIComponent(name)}`).catch((err) => err)]));
  if (!loaded) return void root.append(back);
  const [specs, overview, head] = loaded;
  if (overview.n_inferences === 0) return void fill(root, h("h1", {}, `Head ${name}`), noScores(overview), back);
  if (head instanceof Error) return void fill(root, h("h1", {}, `Head ${name}`), errorBox(head), back);

  const specOf = new Map(specs.map((s) => [s.name, s]));
  // The overlay recomputes a pattern on the served model: none for another model's head.
  const examples = examplesPanel(head, specs, route, await isServed(head.model));
  const matters = h("div");
  const notes = notesPanel("head", head.name);
  const clusters = h("div", { id: "head-clusters" }, loading("Loading the head's clusters"));
  const related = h("div", {}, loading("Finding related heads"));
  const across = h("div", { id: "related-across" }, loading("Finding related heads in other models"));
  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, `Head ${head.name}`), neighbours(head, overview)),
    h("div", { class: "facts" }, h("span", {}, `model ${head.model}`), h("span", {}, `layer ${head.layer}, head ${head.head}`),
      h("span", {}, `${int(head.n_patterns)} patterns of this head`), coverage(head)),
    h("div", { class: "notice head-caveat", id: "head-caveat", role: "note" }, h("strong", {}, "Caveat: "), head.caveat),
    h("section", { class: "panel" }, h("h2", {}, "Labels and their evidence"), labelsPanel(head, specOf)),
    h("section", { class: "panel" }, h("h2", {}, "Profile: every score over this head's patterns"),
      h("p", { class: "muted" }, `Each score is averaged over the query rows it applies to, per pattern; the numbers are over this head's ${int(head.n_patterns)} patterns, the baseline is the median over all ${int(overview.n_layers * overview.n_heads)} heads of each head's median.`),
      profileTable(head, specs), stripLegend()),
    examples.element,
    h("section", { class: "panel" }, h("h2", {}, "Clusters of this head (newest clustering)"), clusters),
    h("section", { class: "panel" }, h("h2", {}, "Related heads of this model"), related),
    h("section", { class: "panel" }, h("h2", {}, "Related heads in other models"), across),
    h("section", { class: "panel" }, h("h2", {}, "Where this head matters for prediction"), matters),
    notes.element);
  await Promise.all([examples.load(), mattersPanel(matters, head.name), notes.load(), clustersPanel(clusters, head.name),
    relatedPanel(related, head.name), acrossPanel(across, head.name)]);
  return () => examples.stop();
}
