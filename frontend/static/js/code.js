// The code around a hole: the prompt's file text before it and after it (InferencePublic.prefix_text and
// suffix_text, decoded by the server as a whole, in the model family's FIM layout), and the hole itself.

import { h, showToken } from "./dom.js";

/** Text of a hole with its white space shown: · for a space, → for a tab, ↵ before each line break; ∅ for
 * nothing at all. */
export function visibleText(text) {
  return text ? text.split(/\r?\n/).map(showToken).join("↵\n") : "∅";
}

/** A <pre> with the hole highlighted: the expected text and the model's completion side by side. */
export function codeWithHole(inference, { maxContext = 1600 } = {}) {
  const prefix = inference.prefix_text;
  const suffix = inference.suffix_text;
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
