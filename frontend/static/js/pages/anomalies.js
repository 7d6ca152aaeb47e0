// #/anomalies: the atlas's most unusual patterns (GET /api/anomalies), judged by AP-MAE's reconstruction error
// against each pattern's own head: its percentile among that head's atlas errors and its robust z. Each card
// opens the head's page, the pattern and its inference.
// URL: #/anomalies?limit=48

import { api, decodeBytes, has, query } from "../api.js";
import { thumbnailCanvas } from "../colors.js";
import { clusterText, fill, h, int, notAvailable, num, pct, showToken, verdict, withStatus } from "../dom.js";
import { ordinalPercentile } from "../grid.js";
import { navigate } from "../url.js";

const LIMITS = [12, 24, 48, 96, 200];
const DEFAULT_LIMIT = 24;

// Four significant digits: the errors of one head often differ only in the third decimal.
const sig = (x) => (x === null || x === undefined ? "–" : Number(x).toPrecision(4));
const signedDiff = (x) => `${x >= 0 ? "+" : "−"}${Number(Math.abs(x).toPrecision(2))}`;

function explanation(result) {
  return h("div", { class: "panel anomaly-about", id: "anomalies-about" },
    h("p", {}, h("strong", {}, "How unusual is measured. "),
      "Each pattern's AP-MAE reconstruction error: AP-MAE, the autoencoder that embeds the patterns, hides the same patches of every pattern (one fixed mask) and reconstructs them; the error, the mean squared error over the hidden patches, is high when a pattern is unlike those it learned from. ",
      "Heads differ in how well AP-MAE reconstructs them, so each pattern is judged against its own head's errors over the atlas."),
    h("ul", {},
      h("li", {}, h("strong", {}, "percentile within its head"), ": the share of that head's atlas patterns whose error is at most this one's (100th = the head's highest)."),
      h("li", {}, h("strong", {}, "robust z"), ": (error − the head's median error) / (1.4826 × the head's median absolute deviation), the distance from the head's typical pattern in robust standard deviations. The list is sorted by it."),
      h("li", {}, h("strong", {}, "error vs median"), ": this pattern's error and its head's median error over the atlas."),
      h("li", {}, `The tail: above a head's ${ordinalPercentile(result.tail)} percentile, where about ${pct(1 - result.tail, 0)} of its patterns lie by chance.`)),
    h("p", { class: "muted" }, "Unusual is not wrong: a rare pattern can belong to a correct completion. The verdict shown is the completion's first token."));
}

function card(a, rank, tailAt) {
  const tail = a.percentile > tailAt;
  return h("div", { class: "anomaly-card", dataset: { pattern: a.id, inference: a.inference_id, head: a.name } },
    h("a", { class: "anomaly-thumb", href: `#/pattern/${a.id}`, title: `open pattern #${a.id} (${a.name} of inference #${a.inference_id})` },
      thumbnailCanvas(decodeBytes(a.thumbnail), a.thumbnail_size, 0, 88)),
    h("div", { class: "anomaly-facts" },
      h("div", {}, h("span", { class: "muted" }, `#${rank} · `), h("a", { class: "head-link", href: `#/head/${a.name}`, title: `what ${a.name} does` }, h("code", {}, a.name)),
        a.cluster === null || a.cluster === undefined ? null : h("span", { class: "muted" }, ` · ${clusterText(a.cluster)}`)),
      h("div", { class: "anomaly-percentile" }, h("strong", {}, `${ordinalPercentile(a.percentile)} percentile`), ` of ${a.name}'s atlas errors`, tail ? h("span", { class: "badge tail", title: `above ${a.name}'s ${ordinalPercentile(tailAt)} percentile` }, "in its tail") : null),
      h("div", { class: "anomaly-z" }, `robust z ${num(a.robust_z, 2)}`),
      h("div", { class: "anomaly-error", title: `AP-MAE reconstruction error ${a.error}; ${a.name}'s median ${a.head_median}` },
        `error ${sig(a.error)} vs ${a.name}'s median ${sig(a.head_median)} (${signedDiff(a.error - a.head_median)})`),
      h("div", {}, `task ${a.task ?? "pasted"} · first token `, verdict(a.first_token_correct)),
      h("div", { class: "anomaly-target" }, "hole ", h("code", {}, showToken(a.target_text ?? ""))),
      h("div", {}, h("a", { class: "pattern-link", href: `#/pattern/${a.id}` }, `pattern #${a.id}`), " · ",
        h("a", { class: "inference-link", href: `#/inference/${a.inference_id}?head=${a.name}` }, `inference #${a.inference_id}`))));
}

/** The atlas has no reconstruction errors yet: say so, and how to compute them. */
function noErrors(model) {
  return h("div", { class: "notice", id: "no-anomalies", role: "status" },
    h("strong", {}, "No reconstruction errors yet. "),
    `None of ${model}'s atlas patterns has an AP-MAE reconstruction error, so none can be called unusual. Compute them with `,
    h("code", {}, "attnlens heads backfill"), " or a ", h("code", {}, "head_scores"), " job on the ", h("a", { href: "#/jobs" }, "Jobs page"),
    "; a new atlas build stores them as it goes.");
}

export async function render(root, route) {
  const asked = Number(route.params.get("limit"));
  const limit = LIMITS.includes(asked) ? asked : DEFAULT_LIMIT;
  const status = h("div");
  fill(root, h("h1", {}, "Unusual patterns"), status);
  if (!(await has("/api/anomalies"))) return void fill(root, h("h1", {}, "Unusual patterns"), notAvailable("The list of unusual patterns"));
  const result = await withStatus(status, "Ranking the atlas's patterns by how unusual they are for their head", () => api(`/api/anomalies${query({ limit })}`));
  if (!result) return;
  if (result.n_patterns === 0) return void fill(root, h("h1", {}, "Unusual patterns"), noErrors(result.model));

  const picker = h("select", { id: "anomaly-limit", "aria-label": "how many patterns" },
    LIMITS.map((n) => h("option", { value: n, selected: n === limit }, String(n))));
  picker.addEventListener("change", () => navigate(["anomalies"], { limit: picker.value === String(DEFAULT_LIMIT) ? "" : picker.value }));
  const shown = result.items.length;
  fill(root,
    h("div", { class: "title-row" }, h("h1", {}, "Unusual patterns"), h("label", {}, "show the top ", picker)),
    h("div", { class: "facts", id: "anomalies-facts" },
      h("span", {}, `model ${result.model}`),
      h("span", {}, `${int(result.n_patterns)} atlas patterns with a reconstruction error`),
      h("span", {}, `the ${int(shown)} most unusual for their head shown, highest robust z first`)),
    explanation(result),
    shown ? h("div", { class: "anomaly-cards", id: "anomaly-cards" }, result.items.map((a, i) => card(a, i + 1, result.tail)))
      : h("p", { class: "muted" }, "No pattern to show."));
}
