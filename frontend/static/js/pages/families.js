// #/families: the pattern families of the served model, from the newest `pattern_families` run (one clustering
// of every head's patterns together). Each family: its size, the labels its members' head-type scores support
// with their evidence, typical members (the medoid, then the members nearest it), where it occurs (members per
// layer as a bar strip, its top heads and tasks) and the first-token correctness of its completions with a 95%
// interval beside the atlas's rate. Before any run: why, the job making one, or a button that queues one.
// #/families/3: one family in full, with every example.

import { api, decodeBytes, query } from "../api.js";
import { thumbnailCanvas } from "../colors.js";
import { errorBox, fill, h, int, num, pct, withStatus } from "../dom.js";
import { FINISHED, jobBlock, pollJob } from "../jobs.js";
import { notesPanel } from "../notes.js";

const THUMBS = 3;
const CAVEAT = "Labels are hypotheses: a family carries a score's label when the median of that score over its members (those it applies to) reaches the threshold heads are labelled by. They say what these patterns attend to on these inputs, not what the heads compute.";

/** "12.3% [8.1–17.9%] of 120" for a rate with its interval (CompletionRatePublic). */
const rateText = (r) => `${pct(r.rate)} [${pct(r.low)}–${pct(r.high)}] of ${int(r.trials)}`;

/** The labels a family carries, each with its evidence, or why it has none. */
function labelList(family) {
  if (!family.labels.length)
    return h("p", { class: "muted family-labels" }, "No label: no score's median over its members reaches its threshold.");
  return h("ul", { class: "family-labels" }, family.labels.map((l) => h("li", { dataset: { score: l.score } },
    h("span", { class: "badge labelled" }, l.label), " ",
    h("span", { class: "evidence" }, `median ${num(l.median, 2)} ≥ ${l.threshold} over ${int(l.n_applicable)} of ${int(family.n_scored)} scored members`))));
}

/** Members per layer as a strip of bars (every layer of the run, so strips line up across families). */
function layerStrip(family, nLayers) {
  const counts = new Map(family.layers.map((l) => [l.layer, l.count]));
  const most = Math.max(1, ...family.layers.map((l) => l.count));
  const bars = Array.from({ length: nLayers }, (_, layer) => {
    const count = counts.get(layer) ?? 0;
    return h("span", { class: "layer-bar", title: `layer ${layer}: ${int(count)} members (${pct(count / family.size)})`,
      style: `height:${(100 * count / most).toFixed(1)}%` });
  });
  return h("div", { class: "layer-strip-wrap", style: `max-width:${Math.max(60, 12 * nLayers)}px` },
    h("div", { class: "layer-strip", role: "img", "aria-label": `members per layer, layers 0 to ${nLayers - 1}` }, bars),
    h("div", { class: "layer-axis muted small" }, h("span", {}, "layer 0"), h("span", {}, `${nLayers - 1}`)));
}

/** Correctness of its completions as text and as an interval bar with the atlas's rate marked. */
function correctness(family, atlas) {
  const r = family.correctness;
  if (!r) return h("p", { class: "muted family-correct" }, "No completion of its members has a usable ground truth.");
  const x = (v) => `${(100 * v).toFixed(1)}%`;
  return h("div", { class: "family-correct" },
    h("div", {}, "first token right: ", h("strong", {}, rateText(r)), " completions",
      family.differs_from_atlas ? h("span", { class: "badge differs", title: "the atlas's rate lies outside this family's 95% interval" }, "differs from the atlas") : null),
    h("div", { class: "interval", role: "img", "aria-label": `95% interval ${x(r.low)} to ${x(r.high)}; atlas ${atlas ? x(atlas.rate) : "unknown"}` },
      h("span", { class: "range", style: `left:${x(r.low)};width:${x(Math.max(0.004, r.high - r.low))}` }),
      h("span", { class: "point", style: `left:${x(r.rate)}` }),
      atlas ? h("span", { class: "atlas", style: `left:${x(atlas.rate)}`, title: `atlas: ${rateText(atlas)}` }) : null),
    atlas ? h("div", { class: "muted small" }, `atlas: ${rateText(atlas)} completions (dashed mark)`) : null);
}

/** Every score over the family's members (a family's page): where it applies, its median, the threshold. */
function scoreTable(family, specs) {
  const specOf = new Map(specs.map((s) => [s.name, s]));
  return h("table", { class: "compact family-scores", id: "family-scores" },
    h("thead", {}, h("tr", {}, ["score", "members it applies to", "median", "deciles 10th / 50th / 90th", "label at a median ≥"].map((t, i) => h("th", { class: i ? "num" : null }, t)))),
    h("tbody", {}, family.scores.map((s) => {
      const spec = specOf.get(s.name);
      return h("tr", { class: s.labelled ? "labelled" : null, dataset: { score: s.name } },
        h("td", { title: spec?.formula }, spec?.title ?? s.name, s.labelled ? h("span", { class: "badge labelled" }, spec?.label ?? "") : null),
        h("td", { class: "num" }, `${int(s.n_applicable)} of ${int(family.n_scored)}`),
        h("td", { class: "num" }, s.median === null ? "does not apply" : num(s.median, 3)),
        h("td", { class: "num" }, s.deciles ? `${num(s.deciles[0], 2)} / ${num(s.deciles[4], 2)} / ${num(s.deciles[8], 2)}` : "–"),
        h("td", { class: "num" }, spec ? `${spec.threshold} (${spec.label})` : "–"));
    })));
}

/** One example: its stored thumbnail, linked to the pattern. */
function example(t, size = 72) {
  return h("a", { class: "family-example", href: `#/pattern/${t.id}`, style: `width:${size}px`, title: `pattern #${t.id}: ${t.name} of completion #${t.inference_id}${t.task ? ` (${t.task})` : ""}` },
    thumbnailCanvas(decodeBytes(t.thumbnail), t.thumbnail_size, 0, size),
    h("span", { class: "example-head" }, t.name), h("span", { class: "example-task muted" }, t.task ?? "pasted"));
}

function familyCard(family, body, nLayers, { full = false } = {}) {
  const tasks = Object.entries(family.tasks);
  return h("section", { class: "panel family", id: `family-${family.label}`, dataset: { label: family.label, size: family.size } },
    h("div", { class: "title-row" },
      h("h2", {}, full ? `Family ${family.label}` : h("a", { href: `#/families/${family.label}` }, `Family ${family.label}`)),
      h("span", { class: "muted" }, `${int(family.size)} patterns (${pct(family.share)} of the run) · ${int(family.n_heads)} heads · ${int(family.n_inferences)} completions`),
      h("span", { class: "actions" }, h("a", { class: "button map-link", href: `#/map?color=family&family=${family.label}` }, "on the cluster map"))),
    h("div", { class: "family-body" },
      h("div", { class: "family-examples", title: "the medoid (most typical member) first, then the members nearest it" },
        family.examples.length ? family.examples.map((t) => example(t, full ? 128 : 72)) : h("span", { class: "muted" }, "no example stored")),
      h("div", { class: "family-what" }, h("h3", {}, "Labels"), labelList(family)),
      h("div", { class: "family-where" }, h("h3", {}, "Where it occurs"),
        layerStrip(family, nLayers),
        h("div", { class: "small" }, "top heads: ", family.heads.slice(0, full ? 10 : 4).map((x, i) => [i ? ", " : "", h("a", { href: `#/head/${x.name}` }, x.name), ` ${int(x.count)}`])),
        h("div", { class: "small" }, "tasks: ", tasks.slice(0, full ? tasks.length : 4).map(([t, c]) => `${t} ${int(c)}`).join(", "), !full && tasks.length > 4 ? ` … (${tasks.length})` : "")),
      h("div", { class: "family-how" }, h("h3", {}, "Correctness"), correctness(family, body.atlas_correctness))));
}

/** Queue a pattern_families job (the same job `attnlens families` runs) and follow it. */
function queueButton(model, slot, onDone) {
  return h("button", { class: "primary", id: "queue-families", type: "button", onclick: async (e) => {
    e.target.disabled = true;
    try {
      const job = await api("/api/jobs", { method: "POST", body: { kind: "pattern_families", model } });
      follow(job, slot, onDone);
    } catch (err) {
      e.target.disabled = false;
      fill(slot, errorBox(err));
    }
  } }, "Find pattern families");
}

let following = null;
function follow(job, slot, onDone) {
  following?.abort();
  following = new AbortController();
  fill(slot, jobBlock(job));
  if (FINISHED.has(job.state)) return;
  pollJob(job.id, (j) => fill(slot, jobBlock(j)), { signal: following.signal, everyMs: 2000 })
    .then((j) => { if (j.state === "succeeded") onDone(); })
    .catch((err) => { if (err.name !== "AbortError") fill(slot, errorBox(err)); });
}

function runFacts(body) {
  const run = body.run;
  return h("div", { class: "facts", id: "families-facts" },
    h("span", {}, `run #${run.id} · ${body.model}`),
    h("span", {}, `${int(run.n_patterns)} patterns: ${int(run.n_fitted)} clustered (UMAP + HDBSCAN), the rest by a ${run.parameters.knn_k}-neighbour vote`),
    h("span", {}, `${int(run.n_families)} families · ${int(run.n_noise)} patterns (${pct(run.n_noise / Math.max(1, run.n_patterns))}) in none`),
    body.atlas_correctness ? h("span", { id: "atlas-rate" }, `atlas first-token correctness ${rateText(body.atlas_correctness)} completions`) : null);
}

export async function render(root, route) {
  const label = route.parts[1];
  const status = h("div");
  fill(root, h("h1", {}, "Pattern families"), status);
  const rerender = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
  if (label !== undefined) {
    const loaded = await withStatus(status, `Loading family ${label}`, () =>
      Promise.all([api(`/api/families/${encodeURIComponent(label)}`), api("/api/heads/scores")]));
    if (!loaded) return void root.append(h("p", {}, h("a", { href: "#/families" }, "← all families")));
    const [detail, specs] = loaded;
    const nLayers = Math.max(...detail.family.layers.map((l) => l.layer)) + 1;
    // A family's label only means something within its run: notes about it are kept with the run's id.
    const notes = notesPanel("family", String(detail.family.label), detail.run.id);
    fill(root, h("p", {}, h("a", { href: "#/families" }, "← all families")), h("h1", {}, `Pattern family ${detail.family.label}`),
      runFacts(detail),
      h("div", { class: "notice", role: "note" }, h("strong", {}, "Caveat: "), CAVEAT),
      familyCard(detail.family, detail, nLayers, { full: true }),
      h("section", { class: "panel" }, h("h2", {}, "Every head-type score over its members"),
        h("p", { class: "muted" }, `Over the ${int(detail.family.n_scored)} members whose completion has its scores computed; a relational score applies only where the input has its token pairs.`),
        scoreTable(detail.family, specs)),
      notes.element);
    await notes.load();
    return;
  }
  const body = await withStatus(status, "Loading the pattern families", () => api(`/api/families${query({ thumbnails: THUMBS })}`));
  if (!body) return;
  const jobSlot = h("div", { id: "families-job" });
  if (body.job && !FINISHED.has(body.job.state)) follow(body.job, jobSlot, rerender);
  else if (body.job) fill(jobSlot, jobBlock(body.job));
  if (!body.run) {
    fill(root, h("h1", {}, "Pattern families"),
      h("div", { class: "notice not-yet", id: "no-families", role: "status" },
        // With a job on its way, say so rather than ask for one.
        h("p", {}, body.job && !FINISHED.has(body.job.state) ? `No pattern families of ${body.model} yet: job #${body.job.id} below makes them.` : body.reason),
        h("p", {}, "A family is a cluster of one clustering of every head's patterns together (AP-MAE embeddings, UMAP + HDBSCAN on a sample, the rest by a nearest-neighbour vote), so it groups alike patterns wherever they occur."),
        body.job && !FINISHED.has(body.job.state) ? null : h("p", {}, queueButton(body.model, jobSlot, rerender), " or run ", h("code", {}, "attnlens families"), "."),
        jobSlot));
    return () => following?.abort();
  }
  const nLayers = Math.max(1, ...body.families.flatMap((f) => f.layers.map((l) => l.layer + 1)));
  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, "Pattern families"),
      h("span", { class: "actions" }, h("a", { class: "button", href: "#/map?color=family", id: "families-map" }, "cluster map by family"))),
    runFacts(body), jobSlot,
    h("div", { class: "notice", role: "note" }, h("strong", {}, "Caveat: "), CAVEAT,
      ` Correctness counts each completion once, however many of its heads' patterns are members${body.correctness_leaves_out_tasks.length ? `, and leaves out the control task${body.correctness_leaves_out_tasks.length > 1 ? "s" : ""} ${body.correctness_leaves_out_tasks.join(", ")}` : ""}; read it against the atlas's rate, not against 50%.`),
    body.families.length === 0 ? h("p", { class: "muted", id: "no-families" }, body.reason ?? "This run found no family: every pattern is noise.") : null,
    h("div", { class: "families", id: "families" }, body.families.map((f) => familyCard(f, body, nLayers))));
  return () => following?.abort();
}
