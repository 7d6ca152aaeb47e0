// The attention of the hole's query row drawn over the prompt's tokens: every token shaded by how much the
// query that predicts the hole attends to it, so a head's pattern reads as "what in the code it looks at".

import { h, num, showToken } from "./dom.js";

const TOP = 5;

/** Shade for a weight: √(weight / the row's largest), so that the small weights most heads spread over the
 * code stay visible next to one dominant key (often the first token, an attention sink). */
function shade(weight, largest) {
  return largest > 0 ? Math.sqrt(weight / largest) : 0;
}

/** The overlay for `pattern` (PatternPublic): its tokens as code, each shaded by the hole row's weight. */
export function attentionOverlay(pattern) {
  const row = pattern.values[pattern.hole_query] || [];
  const largest = Math.max(0, ...row);
  const top = [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, TOP).filter((k) => row[k] > 0);
  const rank = new Map(top.map((k, i) => [k, i + 1]));
  const spans = pattern.tokens.map((token, k) => {
    const weight = row[k] ?? 0;
    const attrs = {
      class: `tok${rank.has(k) ? " tok-top" : ""}${k === pattern.hole_query ? " tok-query" : ""}${k === pattern.hole_key ? " tok-hole" : ""}`,
      style: `background: rgba(230, 159, 0, ${shade(weight, largest).toFixed(3)})`,
      title: `token ${k} ${JSON.stringify(showToken(token))}: weight ${weight.toExponential(2)}${rank.has(k) ? ` (rank ${rank.get(k)})` : ""}`,
      dataset: { key: String(k), weight: String(weight) },
    };
    return h("span", attrs, token);
  });
  return h("div", { class: "attention-overlay", id: "attention-overlay" },
    h("p", { class: "muted" },
      `What query token ${pattern.hole_query} (the one that predicts the hole) attends to, over the ${pattern.tokens.length} prompt tokens: shade ∝ √(weight / the largest, ${num(largest, 3)}); `,
      "outlined: the 5 keys with the most weight; underlined red: the last token before the hole; the query token itself is boxed."),
    h("ol", { class: "top-keys", id: "top-keys" }, top.map((k) => h("li", {}, `token ${k} `, h("code", {}, showToken(pattern.tokens[k])), `: ${num(row[k], 4)}`))),
    h("pre", { class: "code overlay-code" }, spans));
}
