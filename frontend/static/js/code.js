// The code around a hole, rebuilt from the prompt tokens: prefix, the hole (expected vs completion), suffix.

import { h, showToken } from "./dom.js";

const FIM = { prefix: "<fim_prefix>", suffix: "<fim_suffix>", middle: "<fim_middle>" };

/** Split an inference's prompt tokens into prefix and suffix text (FIM: prefix-suffix-middle order). */
export function splitPrompt(inference) {
  const tokens = inference.prompt_tokens;
  if (inference.mode === "fim") {
    const p = tokens.indexOf(FIM.prefix);
    const s = tokens.indexOf(FIM.suffix);
    const m = tokens.lastIndexOf(FIM.middle);
    if (p >= 0 && s > p && m > s) return { prefix: tokens.slice(p + 1, s).join(""), suffix: tokens.slice(s + 1, m).join("") };
  }
  return { prefix: tokens.join(""), suffix: "" }; // left to right: the hole is at the end
}

/** Text of a hole with its white space shown: · for a space, → for a tab, ↵ before each line break; ∅ for
 * nothing at all. */
export function visibleText(text) {
  return text ? text.split(/\r?\n/).map(showToken).join("↵\n") : "∅";
}

/** A <pre> with the hole highlighted: the expected text and the model's completion side by side. */
export function codeWithHole(inference, { maxContext = 1600 } = {}) {
  const { prefix, suffix } = splitPrompt(inference);
  const shownPrefix = prefix.length > maxContext ? `…${prefix.slice(-maxContext)}` : prefix;
  const shownSuffix = suffix.length > maxContext ? `${suffix.slice(0, maxContext)}…` : suffix;
  const expected = inference.target_text;
  const completion = inference.completion_text;
  // Expected and completion apart (an arrow between them, not glued into one word), their white space made
  // visible, line breaks kept so that a multi-line hole reads as lines.
  const hole = h("span", { class: "hole", title: "the hole: expected text → the model's completion (· space, → tab, ↵ line break)" },
    expected !== null && expected !== undefined ? [h("span", { class: "expected" }, visibleText(expected)), h("span", { class: "hole-sep", "aria-hidden": "true" }, " → ")] : null,
    h("span", { class: "completion" }, visibleText(completion)));
  const pre = h("pre", { class: "code" }, shownPrefix, hole, shownSuffix);
  // Scroll the hole into the middle of the box once it is laid out.
  requestAnimationFrame(() => {
    pre.scrollTop = Math.max(0, hole.offsetTop - pre.clientHeight / 2);
  });
  return pre;
}

export function holeLegend() {
  return h("div", { class: "legend" }, h("span", { class: "key key-expected" }, "expected"), " → ", h("span", { class: "key key-completion" }, "model's completion"),
    h("span", { class: "muted" }, " · white space in the hole: · space, → tab, ↵ line break"));
}
