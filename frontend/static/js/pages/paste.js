// Paste Java: select a span (or place the cursor and pick a task) to make the hole, or ask for auto-mined
// holes; shows the completion, the predicted probability of correctness next to the predictor's measured
// accuracy and chance, correctness when known, and the heads that drive the prediction (listed, and
// outlined on the grid). The task pickers offer what the server accepts in each mode (GET /api/tasks).
// "Store this paste" (on by default) keeps it as a pasted inference (never part of the atlas's analyses),
// which the result can delete again; unticked, nothing is written and the grid comes inline.
// Before any run, a preview beside the editor marks the hole(s) the server would make for the cursor,
// selection or automatic task the user is on (js/paste_preview.js, POST /api/analyze/holes).
// Beside the prediction: the share of the paste's heads in the tail of their own atlas reconstruction errors
// (`unusual_share`), with a warning when the input is unlike the atlas; the grid can frame each head by it.
// URL: #/paste?code=...&start=&end=  |  &cursor=&task=  |  &auto=identifiers,eol  (&store=0: not stored)

import { api, has, tasks } from "../api.js";
import { bringIntoView, clusterText, errorBox, fill, h, int, notAvailable, num, pct, showToken, verdict, withStatus } from "../dom.js";
import { HeadGrid, chanceText, gridLegend, ordinalPercentile, unusualToggle } from "../grid.js";
import { holePreview } from "../paste_preview.js";
import { servedOnlyNotice } from "../models.js";
import { navigate, setState } from "../url.js";

const EXAMPLE = `public class Counter {
    private int count;

    public void increment() {
        count += 1;
    }

    public boolean isEmpty() {
        return count == 0;
    }
}
`;

/** JavaScript string offsets count UTF-16 units; the API counts code points (Python str indices). */
export function codePointOffset(text, utf16Offset) {
  return Array.from(text.slice(0, utf16Offset)).length;
}

function utf16Offset(text, codePoints) {
  return Array.from(text).slice(0, codePoints).join("").length;
}

/** A link to the evidence behind the predictor's accuracy (its page). */
function evidenceLink(pr) {
  return h("span", {}, " · ", h("a", { id: "prediction-evidence", href: `#/predictor/${pr.id}` }, "how this predictor was measured"));
}

function predictionView(result) {
  const p = result.prediction;
  if (!p) return h("div", { class: "notice" }, result.prediction_unavailable || "No correctness predictor for this task yet.");
  const pr = p.predictor;
  return h("div", { class: "prediction", id: "prediction" },
    h("div", { class: "big" }, `${pct(p.probability_correct)} likely correct`),
    h("div", { class: "meter" }, h("div", { class: "bar", style: `width:${(100 * p.probability_correct).toFixed(1)}%` }),
      h("div", { class: "chance", style: `left:${(100 * pr.chance).toFixed(1)}%`, title: "chance level" })),
    // The measured accuracy is this prediction's only when the input is like the atlas rows it was measured
    // on (same window length, model and AP-MAE checkpoint; kNN cluster ids that agree); else say why not.
    p.applies ? [
      h("p", { class: "muted" }, `predictor ${pr.name} (${pr.kind}${pr.task ? `, ${pr.task}` : ""}): measured accuracy ${pct(pr.accuracy)} [${pct(pr.accuracy_low)}, ${pct(pr.accuracy_high)}], chance ${pct(pr.chance)}`,
        evidenceLink(pr)),
      h("p", { class: "muted", id: "prediction-applicability" }, `The measured accuracy applies: ${p.applicability}.`),
    ] : h("div", { class: "notice", id: "prediction-not-applicable" },
      h("p", {}, h("strong", {}, "No measured accuracy applies to this prediction: "), `${p.applicability}. The probability is what the predictor says; how often it is right on inputs like this one is unknown.`),
      h("p", {}, `predictor ${pr.name} (${pr.kind}${pr.task ? `, ${pr.task}` : ""}), measured on atlas windows: ${pct(pr.accuracy)} [${pct(pr.accuracy_low)}, ${pct(pr.accuracy_high)}], chance ${pct(pr.chance)}`,
        evidenceLink(pr))),
    // A probability from a predictor that cannot beat the majority class invites over-reading: say so.
    pr.accuracy_low > pr.chance ? null
      : h("p", { class: "notice", id: "prediction-uninformative" }, "This predictor's accuracy is not distinguishable from chance (its 95% interval does not lie above the majority-class rate), so this probability says little. Build a larger atlas for this task and retrain the predictors."));
}

// Above this share of heads in their tail, the input is unlike the atlas (about 1 - tail by chance).
const UNLIKE_THE_ATLAS = 0.1;

/** How unusual the paste is for the atlas: the share of its heads in the tail of their own atlas errors. */
export function unusualView(result) {
  const share = result.unusual_share;
  if (share === undefined) return null; // a server without the anomaly signal
  const tail = result.unusual_tail ?? 0.99;
  const title = h("h3", {}, "Unusual for the atlas?");
  if (share === null)
    return [title, h("p", { class: "muted", id: "unusual-share", dataset: { share: "" } }, "How unusual this input is cannot be judged: the atlas has no AP-MAE reconstruction errors yet (queue a ",
      h("code", {}, "head_scores"), " job on the ", h("a", { href: "#/jobs" }, "Jobs page"), ", or run ", h("code", {}, "attnlens heads backfill"), ").")];
  const measured = result.grid.heads.filter((c) => c.error_percentile !== null && c.error_percentile !== undefined);
  const inTail = measured.filter((c) => c.error_percentile > tail).length;
  const line = h("p", { id: "unusual-share", dataset: { share } },
    `${int(inTail)} of ${int(measured.length)} heads (${pct(share, 0)}) are in the tail of their atlas errors (above the head's own ${ordinalPercentile(tail)} percentile of AP-MAE reconstruction error; ${chanceText(result.unusual_chance, tail)}).`);
  if (share <= UNLIKE_THE_ATLAS) return [title, line];
  return [title, line, h("div", { class: "notice unusual-warning", id: "unusual-warning", role: "note" },
    h("strong", {}, "This input is unlike the atlas. "),
    `${pct(share, 0)} of its heads are in their tail, far above the ${pct(result.unusual_chance ?? 1 - tail, 1)} expected by chance: the predictors and their accuracies were measured on atlas rows, and may not apply to it.`)];
}

/** A task picker of the tasks `usable` in one mode (API order, descriptions as titles); `wanted` if offered. */
function taskPicker(id, label, taskList, usable, wanted) {
  const offered = taskList.filter(usable);
  const chosen = offered.some((t) => t.name === wanted) ? wanted : offered[0]?.name;
  return h("select", { id, "aria-label": label, disabled: offered.length === 0 },
    offered.map((t) => h("option", { value: t.name, title: t.description, selected: t.name === chosen }, t.name)));
}

const signed = (x) => `${x >= 0 ? "+" : "−"}${num(Math.abs(x), 3)}`;

/**
 * The heads that drive the prediction, strongest first: signed importance (SHAP, log-odds of "correct") and
 * the cluster the pasted pattern of that head joined; each opens that head of the stored inference.
 */
export function topHeadsList(topHeads, inferenceId) {
  // An unstored paste (inferenceId null) has no inference to open: the names are plain text.
  const name = (t) => (inferenceId === null || inferenceId === undefined ? h("code", {}, t.name)
    : h("a", { href: `#/inference/${inferenceId}?head=${t.name}` }, h("code", {}, t.name)));
  return h("ol", { class: "top-heads", id: "top-heads" }, topHeads.map((t) =>
    h("li", { dataset: { head: t.name } },
      name(t),
      h("span", { class: t.importance >= 0 ? "importance up" : "importance down" }, ` ${signed(t.importance)}`),
      ` · ${clusterText(t.cluster)}`)));
}

/** Where a hole's result lives: its stored inference (with intervene and delete), or "not stored". */
function storedAs(r, onDelete) {
  if (r.inference_id === null) return h("span", { class: "muted", id: "not-stored" }, "not stored (analysed without writing anything)");
  const del = h("button", { class: "small delete-paste", "aria-label": `delete inference ${r.inference_id}`, onclick: async () => {
    if (!window.confirm(`Delete pasted inference #${r.inference_id} with its head patterns?`)) return;
    del.disabled = true;
    try {
      const done = await api(`/api/inferences/${r.inference_id}`, { method: "DELETE" });
      onDelete(r, done);
    } catch (err) {
      del.disabled = false;
      del.after(errorBox(err));
    }
  } }, "delete");
  return [h("a", { href: `#/inference/${r.inference_id}` }, `inference #${r.inference_id}`), " · ",
    h("a", { href: `#/intervene/${r.inference_id}` }, "intervene"), " · ", del];
}

function holeView(r, onDelete) {
  const slot = h("dd", { class: "stored-as" }, storedAs(r, (hole, done) => {
    fill(slot, h("span", { class: "muted deleted" }, `deleted (inference #${done.inference_id}, ${int(done.head_patterns)} head patterns)`));
    onDelete?.(hole, done);
  }));
  return h("dl", { class: "counts" },
    h("dt", {}, "task"), h("dd", {}, r.task ?? "selection"),
    h("dt", {}, "completion"), h("dd", {}, h("code", { class: "completion-text" }, showToken(r.completion_text))),
    h("dt", {}, "expected"), h("dd", {}, r.target_text === null ? "unknown" : h("code", {}, showToken(r.target_text))),
    h("dt", {}, "first token"), h("dd", {}, verdict(r.first_token_correct)),
    h("dt", {}, "whole span"), h("dd", {}, verdict(r.span_correct)),
    h("dt", {}, "p(expected)"), h("dd", {}, num(r.expected_token_prob, 4)),
    h("dt", {}, "stored as"), slot);
}

export async function render(root, route) {
  const p = route.params;
  const [available, canPreview, taskList, servedOnly] = await Promise.all([has("/api/analyze", "post"), has("/api/analyze/holes", "post"), tasks().catch((err) => err),
    servedOnlyNotice("pasted code is completed, and its heads drawn and predicted, by the model the server holds")]);
  const known = Array.isArray(taskList) ? taskList : [];
  const box = h("textarea", { class: "code-input", id: "code", spellcheck: "false", rows: "16", "aria-label": "Java code" }, p.get("code") ?? EXAMPLE);
  // One picker per mode: the server refuses a task at the cursor that has no `at_cursor` (422 invalid_hole),
  // and automatic holes of a task without `auto_holes`, so neither picker offers them.
  const taskSelect = taskPicker("task", "task at the cursor", known, (t) => t.at_cursor, p.get("task"));
  const autoSelect = taskPicker("auto-task", "task of the automatic holes", known, (t) => t.auto_holes, (p.get("auto") || "").split(",")[0]);
  const where = h("p", { class: "muted", id: "hole-info" });
  const storeBox = h("input", { type: "checkbox", id: "store-paste", checked: p.get("store") !== "0" });
  storeBox.addEventListener("change", () => setState({ store: storeBox.checked ? "" : "0" }));
  const statusSlot = h("div", { id: "analyze-status" });
  const preview = canPreview ? holePreview() : null;
  const resultSlot = h("div", { id: "analyze-result" });
  let grid = null;

  const describeHole = () => {
    const code = box.value;
    const [s, e] = [codePointOffset(code, box.selectionStart), codePointOffset(code, box.selectionEnd)];
    where.textContent = s === e ? `cursor at ${int(s)}: the hole is the next ${taskSelect.value} target there` : `selection ${int(s)}–${int(e)} is the hole: "${Array.from(code).slice(s, e).join("").slice(0, 60)}"`;
  };
  // The preview follows the mode the user last touched: the editor and its task picker (cursor or
  // selection), or the automatic picker and its button; it asks for exactly the body the run would send.
  let previewMode = p.get("auto") && !p.get("cursor") && !p.get("start") ? "auto" : "cursor";
  const previewNow = () => {
    if (!preview) return;
    const code = box.value;
    const [s, e] = [codePointOffset(code, box.selectionStart), codePointOffset(code, box.selectionEnd)];
    if (previewMode === "auto") preview.update({ mode: "auto", task: autoSelect.value, code, tasks: [autoSelect.value] });
    else if (s === e) preview.update({ mode: "cursor", task: taskSelect.value, code, hole: { cursor: s, task: taskSelect.value } });
    else preview.update({ mode: "selection", code, hole: { start: s, end: e } });
  };
  const previewIn = (mode) => () => {
    previewMode = mode;
    previewNow();
  };
  ["select", "keyup", "click"].forEach((ev) => box.addEventListener(ev, previewIn("cursor")));
  ["select", "keyup", "click", "input"].forEach((ev) => box.addEventListener(ev, describeHole));
  box.addEventListener("input", previewNow);
  const fitRows = () => (box.rows = Math.max(8, Math.min(32, box.value.split("\n").length + 1)));
  box.addEventListener("input", fitRows);
  taskSelect.addEventListener("change", previewIn("cursor"));
  taskSelect.addEventListener("change", describeHole);
  ["change", "focus"].forEach((ev) => autoSelect.addEventListener(ev, previewIn("auto")));

  async function run(hole, holeTasks) {
    const code = box.value;
    const urlHole = hole ? (hole.start !== undefined ? { start: hole.start, end: hole.end, cursor: "", task: "", auto: "" } : { cursor: hole.cursor, task: hole.task, start: "", end: "", auto: "" }) : { auto: holeTasks.join(","), start: "", end: "", cursor: "" };
    const store = storeBox.checked;
    setState({ code, ...urlHole, store: store ? "" : "0" });
    grid?.destroy();
    fill(resultSlot);
    const result = await withStatus(statusSlot, "Running the model on your code (completion, attention, embeddings)", (onWait) =>
      api("/api/analyze", { method: "POST", body: { code, hole, tasks: holeTasks, store }, onWait }));
    if (!result) return;
    const stored = result.inference_id !== null;
    // Each cell carries its cluster (the one its pattern joined by kNN vote); the grid's hover shows it. An
    // unstored paste has no inference to open a head in.
    grid = new HeadGrid(result.grid, { label: "Heads of the pasted code", describe: (cell) => {
      const rank = result.top_heads.findIndex((t) => t.name === cell.name);
      return [rank >= 0 ? `top head #${rank + 1} (importance ${num(result.top_heads[rank].importance, 3)})` : null,
        stored ? null : "not stored: store the paste to open its full pattern and neighbours"].filter(Boolean);
    }, onActivate: (cell) => { if (stored) navigate(["inference", result.inference_id], { head: cell.name }); } });
    grid.setTop(result.top_heads.map((t) => t.name));
    const legendSlot = h("div");
    const marks = result.top_heads.length ? ["top", "focus"] : ["focus"];
    const toggle = unusualToggle(grid, { onChange: (on) => fill(legendSlot, gridLegend(on ? [...marks, "unusual"] : marks)) });
    fill(legendSlot, gridLegend(marks));
    // Deleting the main hole removes what pointed at it (grid, top heads); other holes stay.
    const onDelete = () => {
      grid?.destroy();
      grid = null;
      fill(resultSlot, h("div", { class: "notice", id: "paste-deleted" }, `Deleted pasted inference #${result.inference_id} and its head patterns.`),
        result.others?.length ? h("section", { class: "panel" }, h("h3", {}, `Other holes (${result.others.length})`), result.others.map((o) => holeView(o))) : null);
    };
    fill(resultSlot,
      h("div", { class: "two-col" },
        h("section", { class: "panel" }, h("h2", {}, "Completion"), holeView(result, onDelete), h("h3", {}, "Predicted correctness"), predictionView(result),
          unusualView(result),
          result.top_heads.length ? [h("h3", {}, "Heads that drive the prediction"),
            h("p", { class: "muted" }, "Signed importance (SHAP, in log-odds of a correct completion) and the cluster this head's pattern joined; outlined on the grid. Click one to open it."),
            topHeadsList(result.top_heads, result.inference_id)] : null,
          result.others?.length ? h("div", {}, h("h3", {}, `Other holes (${result.others.length})`), result.others.map((o) => holeView(o))) : null),
        h("section", { class: "panel" }, h("div", { class: "detail-head" }, h("h2", {}, "Heads"), toggle), grid.element, legendSlot)));
    bringIntoView(resultSlot);
  }

  const bySelection = h("button", { class: "primary", id: "analyze", disabled: !available, onfocus: previewIn("cursor"), onclick: () => {
    const code = box.value;
    const [s, e] = [codePointOffset(code, box.selectionStart), codePointOffset(code, box.selectionEnd)];
    run(s === e ? { cursor: s, task: taskSelect.value } : { start: s, end: e }, null);
  } }, "Complete at the selection / cursor");
  const auto = h("button", { id: "auto", disabled: !available || autoSelect.disabled, onfocus: previewIn("auto"), onclick: () => run(null, [autoSelect.value]) }, "Pick holes automatically");

  fill(root, h("h1", {}, "Paste Java"),
    servedOnly,
    available ? null : notAvailable("Analysing pasted code"),
    Array.isArray(taskList) ? null : errorBox(taskList),
    h("section", { class: "panel" },
      h("p", { class: "muted" }, "Select the span the model should write (the hole), or place the cursor and pick a task; or let the app mine holes of a task."),
      // The preview stands beside the editor (under it on a narrow window), so it stays in view as the
      // cursor moves through a long paste.
      h("div", { class: preview ? "paste-editor with-preview" : "paste-editor" }, h("div", { class: "paste-editor-code" }, box, where), preview?.element),
      h("div", { class: "actions" }, bySelection, h("label", {}, "task at the cursor ", taskSelect),
        h("span", { class: "separator", "aria-hidden": "true" }), auto, h("label", {}, "of task ", autoSelect),
        h("span", { class: "separator", "aria-hidden": "true" }),
        h("label", { title: "Keep it as a pasted inference (shareable, deletable; never part of the atlas's clusters, map or predictors). Unticked: nothing is written." }, storeBox, " store this paste")),
      statusSlot),
    resultSlot);
  // Restore the hole from the URL (offsets are code points) and show it; re-running is the user's choice.
  const code = box.value;
  if (p.get("start") && p.get("end")) box.setSelectionRange(utf16Offset(code, Number(p.get("start"))), utf16Offset(code, Number(p.get("end"))));
  else if (p.get("cursor")) box.setSelectionRange(utf16Offset(code, Number(p.get("cursor"))), utf16Offset(code, Number(p.get("cursor"))));
  describeHole();
  previewNow();
  fitRows();
  return () => {
    grid?.destroy();
    preview?.destroy();
  };
}
