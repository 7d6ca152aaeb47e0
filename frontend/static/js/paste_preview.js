// The paste page's hole preview: which hole(s) a run would complete for the code as it stands, before any
// model runs (POST /api/analyze/holes, which makes the holes with the very functions the analysis uses).
// Shown under the editor: the code around the hole with the hole marked (its white space visible, as
// everywhere in the app), and a line naming the task, the text and the code-point offsets. It follows the
// cursor, the selection and the task pickers: requests wait until the user pauses (debounced), and an
// answer that a newer request has overtaken is dropped (AbortController).

import { api } from "./api.js";
import { visibleText } from "./code.js";
import { fill, h, int, showToken } from "./dom.js";

const DELAY_MS = 200;
const CONTEXT_LINES = 2; // lines shown above the first hole and below the last
const MAX_SHOWN = 60; // characters of a hole's text in the summary line

/** What each mode's button is called on the page, for the sentence that says what it would do. */
const BUTTONS = { cursor: "Complete at the cursor", selection: "Complete at the selection", auto: "Pick holes automatically" };

const shorten = (text) => (text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text);

/** Index (in code points) where the line `back` lines above the one holding `i` starts. */
function linesBefore(chars, i, back) {
  let at = i;
  for (let seen = 0; at > 0; at--) if (chars[at - 1] === "\n" && ++seen > back) break;
  return at;
}

/** Index just after the end of the line `ahead` lines below the one holding `i` (its line break kept out). */
function linesAfter(chars, i, ahead) {
  let at = i;
  for (let seen = 0; at < chars.length; at++) if (chars[at] === "\n" && seen++ >= ahead) break;
  return at;
}

/** The code around `holes` (code-point offsets, sorted, not overlapping) with each hole marked. */
export function codeWithHoles(code, holes) {
  const chars = Array.from(code);
  const from = linesBefore(chars, holes[0].start, CONTEXT_LINES);
  const to = Math.max(linesAfter(chars, holes[holes.length - 1].end, CONTEXT_LINES), holes[holes.length - 1].end);
  const parts = [from > 0 ? "…\n" : null];
  let at = from;
  for (const hole of holes) {
    const start = Math.max(hole.start, at);
    parts.push(chars.slice(at, start).join(""));
    parts.push(h("mark", { class: "preview-hole", dataset: { start: hole.start, end: hole.end },
      title: `the hole (${hole.task ?? "selection"}): code points ${hole.start}–${hole.end} · space, → tab, ↵ line break` },
    visibleText(chars.slice(start, hole.end).join(""))));
    at = Math.max(at, hole.end);
  }
  parts.push(chars.slice(at, to).join(""), to < chars.length ? "\n…" : null);
  return h("pre", { class: "code preview-code", id: "hole-preview-code" }, parts);
}

/** One line per hole: its task, its text (white space shown), its offsets, and what it was widened from. */
function holeLine(code, hole) {
  const chars = Array.from(code);
  const target = chars.slice(hole.target_start, hole.target_end).join("");
  const widened = hole.target_start !== hole.start || hole.target_end !== hole.end;
  return h("li", { class: "preview-line", dataset: { task: hole.task ?? "selection", start: hole.start, end: hole.end } },
    h("strong", {}, hole.task ?? "selection"), " ",
    h("code", { class: "preview-expected" }, showToken(shorten(hole.expected_text))),
    ` at ${int(hole.start)}–${int(hole.end)}`,
    widened ? h("span", { class: "muted" }, ` (the ${hole.task ?? "selected"} ${hole.task ? "target" : "text"} `, h("code", {}, showToken(shorten(target))), " widened to the model's whole tokens)") : null);
}

/** Why there is no hole, in the words of the mode the user is in. */
function noHoleText(request, error) {
  if (error.code !== "invalid_hole") return `No hole yet: ${error.error}`;
  if (request.mode === "cursor") return `No hole at the cursor for task ${request.task}: ${error.error}`;
  if (request.mode === "auto") return `No automatic hole for task ${request.task}: ${error.error}`;
  return `No hole at the selection: ${error.error}`;
}

/**
 * The preview panel and its `update(request)`: request = { mode: "cursor" | "selection" | "auto", task, code,
 * hole, tasks } (hole and tasks exactly as the run would send them). `destroy()` stops what is pending.
 * The panel's data-state says where it is: pending, ready, none (no hole can be made), error.
 */
export function holePreview() {
  const summary = h("div", { class: "preview-summary", id: "hole-preview-summary", role: "status", "aria-live": "polite" });
  const codeSlot = h("div", { class: "preview-code-slot" });
  const panel = h("div", { class: "hole-preview", id: "hole-preview", dataset: { state: "pending" } },
    h("div", { class: "preview-head muted" }, "Hole preview (no model runs: what the run would complete)"), summary, codeSlot);
  let timer = null;
  let inFlight = null;
  let shown = { key: null, state: "pending" };

  function show(request, answer) {
    // The same answer for the same code and mode (the cursor moved within a token, a button took the
    // focus): keep what is on screen, so that nothing flickers or scrolls.
    const key = JSON.stringify([request.mode, request.task, request.code, answer]);
    if (key === shown.key) {
      panel.dataset.state = shown.state;
      return;
    }
    ["mode", "start", "end", "targetStart", "task"].forEach((k) => delete panel.dataset[k]);
    shown = { key, state: answer.error ? "none" : "ready" };
    if (answer.error) {
      panel.dataset.state = "none";
      fill(summary, h("p", { class: "no-hole", id: "no-hole" }, noHoleText(request, answer.error)));
      fill(codeSlot);
      return;
    }
    const holes = [...answer.holes].sort((a, b) => a.start - b.start);
    panel.dataset.state = "ready";
    const [first] = holes;
    Object.assign(panel.dataset, { mode: request.mode, start: first.start, end: first.end, targetStart: first.target_start, task: first.task ?? "selection" });
    const pre = codeWithHoles(request.code, holes);
    fill(summary,
      h("p", {}, `“${BUTTONS[request.mode]}” would complete ${holes.length === 1 ? "this hole" : `these ${holes.length} holes`}:`),
      h("ul", { class: "preview-lines" }, answer.holes.map((hole) => holeLine(request.code, hole))),
      answer.aligned ? null : h("p", { class: "muted", id: "preview-not-aligned" }, `Not yet widened to the model's tokens: ${answer.note}`));
    fill(codeSlot, pre);
    // Bring the first hole into view in the box once it is laid out (a scroll only where one is needed).
    requestAnimationFrame(() => {
      const mark = pre.querySelector("mark");
      if (!mark) return;
      const top = Math.max(0, mark.offsetTop - pre.clientHeight / 2);
      const left = mark.offsetLeft + mark.offsetWidth > pre.clientWidth ? Math.max(0, mark.offsetLeft - pre.clientWidth / 3) : 0;
      if (top !== pre.scrollTop) pre.scrollTop = top;
      if (left !== pre.scrollLeft) pre.scrollLeft = left;
    });
  }

  async function send(request) {
    const mine = new AbortController();
    inFlight = mine;
    let answer;
    try {
      answer = await api("/api/analyze/holes?inline_errors=true", {
        method: "POST", body: { code: request.code, hole: request.hole, tasks: request.tasks }, signal: mine.signal,
      });
    } catch (err) {
      if (err.name === "AbortError" || inFlight !== mine) return;
      panel.dataset.state = "error";
      shown = { key: null, state: "error" };
      fill(summary, h("p", { class: "no-hole" }, `The preview is not available: ${err.message}`));
      fill(codeSlot);
      return;
    }
    if (inFlight !== mine) return; // a newer request overtook this one
    inFlight = null;
    show(request, answer);
  }

  return {
    element: panel,
    update(request) {
      clearTimeout(timer);
      inFlight?.abort();
      inFlight = null;
      panel.dataset.state = "pending";
      timer = setTimeout(() => send(request), DELAY_MS);
    },
    destroy() {
      clearTimeout(timer);
      inFlight?.abort();
    },
  };
}
