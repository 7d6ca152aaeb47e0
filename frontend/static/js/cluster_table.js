// A head's clusters as a table (GET /api/heads/{name}/clusters): size, labels with their evidence, the
// members' first-token correctness against the head's, and typical members. The inference page's cluster
// panel and the head page both draw it.

import { api, decodeBytes } from "./api.js";
import { thumbnailCanvas } from "./colors.js";
import { h, int, num, pct, showToken } from "./dom.js";

let scoreSpecs = null;

/** The head-type scores (GET /api/heads/scores: name, label, title, formula), fetched once; [] on failure. */
export function scores() {
  if (scoreSpecs === null) scoreSpecs = api("/api/heads/scores").catch(() => (scoreSpecs = null, []));
  return scoreSpecs;
}

/** A correctness rate with its 95% interval, "62% [48–74%]". */
const rateText = (rate, low, high) => `${pct(rate, 0)} [${pct(low, 0).replace("%", "")}–${pct(high, 0)}]`;

/** A cluster's first-token correctness [95% Wilson CI] against the head's rate over all its clustered patterns. */
function correctnessCell(c) {
  const own = c.known ? [h("strong", {}, rateText(c.correct_rate, c.correct_low, c.correct_high)), ` right (${int(c.correct)} of ${int(c.known)})`]
    : h("span", { class: "muted" }, "no ground truth");
  const head = c.head_correct_rate === null || c.head_correct_rate === undefined ? "no ground truth for the head"
    : `vs ${rateText(c.head_correct_rate, c.head_correct_low, c.head_correct_high)} for the head`;
  return h("td", { class: "cluster-correct" }, h("div", { class: "cluster-rate" }, own), h("div", { class: "muted small head-rate" }, head));
}

/** A cluster's labels, each with its evidence: the score's median over the members it applies to vs the threshold. */
function labelsCell(c, specOf) {
  if (!c.labels?.length) return h("td", { class: "cluster-labels muted" }, "no label");
  return h("td", { class: "cluster-labels" }, c.labels.map((l) => {
    const spec = specOf.get(l.score);
    return h("div", { class: "cluster-label", dataset: { label: l.label, score: l.score }, title: `${spec?.title ?? l.score}: ${spec?.formula ?? ""}` },
      h("strong", {}, l.label), h("div", { class: "muted small" }, `median ${num(l.median, 3)} ≥ ${l.threshold} · ${int(l.n_applicable)} members`));
  }));
}

/** The medoid, then the members nearest it: thumbnails that open their pattern. */
function examplesCell(c) {
  if (!c.examples?.length) return h("td", { class: "cluster-examples muted" }, "–");
  return h("td", { class: "cluster-examples" }, c.examples.map((e, i) =>
    h("a", { class: "cluster-example", href: `#/pattern/${e.id}`, dataset: { pattern: e.id },
      title: `${i === 0 ? "the medoid" : "a member near the medoid"}: pattern #${e.id} of inference #${e.inference_id}, task ${e.task ?? "pasted"}, hole "${showToken(e.target_text ?? "")}", first token ${e.first_token_correct === null ? "unknown" : e.first_token_correct ? "correct" : "wrong"}` },
    thumbnailCanvas(decodeBytes(e.thumbnail), e.thumbnail_size, 0, 40))));
}

/** The table and its notes; the row of cluster `mine` (the selected pattern's, if any) is highlighted. */
export function clusterTable(clusters, specs, mine = null) {
  const specOf = new Map(specs.map((s) => [s.name, s]));
  const top = (counts) => Object.entries(counts || {}).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${v}`).join(", ");
  return [
    h("div", { class: "cluster-table-wrap" }, h("table", { class: "compact clusters" },
      h("thead", {}, h("tr", {}, h("th", {}, "cluster"), h("th", { class: "num" }, "patterns"), h("th", {}, "labels: median ≥ threshold"),
        h("th", { title: "of the members whose completion has a ground truth" }, "first token right [95% CI] (of those with ground truth)"), h("th", {}, "typical members"))),
      h("tbody", {}, clusters.map((c) => {
        const what = [top(c.tasks) && `tasks: ${top(c.tasks)}`, top(c.node_types) && `nodes: ${top(c.node_types)}`].filter(Boolean);
        return h("tr", { class: c.label === mine ? "mine" : null, dataset: { label: c.label } },
          h("td", { class: "cluster-name" }, h("strong", {}, c.label === -1 ? "noise" : `cluster ${c.label}`),
            c.label === mine ? h("span", { class: "badge this-pattern" }, "this pattern") : null,
            what.map((w) => h("div", { class: "muted small" }, w))),
          h("td", { class: "num" }, int(c.size)),
          labelsCell(c, specOf), correctnessCell(c), examplesCell(c));
      })))),
    h("p", { class: "muted small cluster-notes" },
      "Labels: a head-type score's median over the members it applies to, against the label's threshold (hypotheses from these inputs, not facts). ",
      "Right: the members' first-token correctness with its 95% Wilson interval, against the same rate over all of this head's clustered patterns. ",
      "Typical members: the medoid, then the members nearest it (click one to open it)."),
  ];
}
