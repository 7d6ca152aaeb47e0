// The cluster map's filters (layer, head, task, first-token correctness) and its hidden completions: their URL
// form, which loaded points they leave, and the controls that edit them. Filtering runs in the browser on the
// columns already loaded (GET /api/maps/latest); nothing here asks the server again.

import { errorBox, h, int } from "./dom.js";
import { taskName } from "./map_traces.js";

const TYPING_PAUSE_MS = 300;
export const OUTCOMES = [["", "any first token"], ["true", "first token right"], ["false", "first token wrong"], ["unknown", "first token unknown"]];

/** "0-3,7" -> Set {0, 1, 2, 3, 7}; blank -> null (no filter). Throws an Error that says what is wrong. */
export function parseNumbers(spec) {
  const text = (spec ?? "").trim();
  if (!text) return null;
  const values = new Set();
  for (const raw of text.split(",")) {
    const part = raw.trim();
    if (!part) continue;
    const match = part.match(/^(\d+)(?:\s*[-–]\s*(\d+))?$/);
    if (!match) throw new Error(`"${part}" is not a number or a range like 0-3`);
    const lo = Number(match[1]);
    const hi = match[2] === undefined ? lo : Number(match[2]);
    if (hi < lo) throw new Error(`"${part}" runs backwards`);
    if (hi - lo > 10_000) throw new Error(`"${part}" is too wide a range`);
    for (let v = lo; v <= hi; v++) values.add(v);
  }
  return values.size ? values : null;
}

/** The filters and hidden completions as the URL holds them (`layer`, `head`, `task`, `correct`, `exclude`). */
export function readFilters(params) {
  const outcome = params.get("correct") ?? "";
  const exclude = (params.get("exclude") ?? "").split(",").map(Number).filter((v) => Number.isInteger(v) && v > 0);
  return {
    layer: params.get("layer") ?? "",
    head: params.get("head") ?? "",
    task: params.get("task") ?? "",
    correct: OUTCOMES.some(([v]) => v === outcome) ? outcome : "",
    exclude: [...new Set(exclude)].sort((a, b) => a - b),
  };
}

export const filterParams = (f) => ({ layer: f.layer.trim(), head: f.head.trim(), task: f.task, correct: f.correct, exclude: f.exclude.join(",") });

/** The map rows (indices into the columns) that pass the filters and are not hidden, in map order. Throws
 * (from parseNumbers) when a layer or head filter cannot be read. */
export function visibleRows(points, filters) {
  const layers = parseNumbers(filters.layer);
  const heads = parseNumbers(filters.head);
  const hidden = new Set(filters.exclude);
  const right = filters.correct === "true";
  const rows = [];
  for (let i = 0; i < points.id.length; i++) {
    if (layers && !layers.has(points.layer[i])) continue;
    if (heads && !heads.has(points.head[i])) continue;
    if (filters.task && taskName(points.task[i]) !== filters.task) continue;
    if (filters.correct === "unknown" ? points.correct[i] !== null : filters.correct && points.correct[i] !== right) continue;
    if (hidden.size && hidden.has(points.inference[i])) continue;
    rows.push(i);
  }
  return rows;
}

/** The filters in force, in words ("layers 0-3 · task eol"), for the count line. */
export function describeFilters(f) {
  return [
    f.layer.trim() && `layers ${f.layer.trim()}`,
    f.head.trim() && `heads ${f.head.trim()}`,
    f.task && `task ${f.task}`,
    f.correct && OUTCOMES.find(([v]) => v === f.correct)[1],
  ].filter(Boolean);
}

const span = ([lo, hi]) => (lo === hi ? `${lo}` : `${lo}–${hi}`);

/**
 * The filter controls. `onChange(filters)` gets the edited filters (exclusions untouched) once they read well;
 * a layer or head text that does not is flagged in place and changes nothing. The task options are the
 * server's task list (`taskList`, from GET /api/tasks) with each task's points on the loaded map.
 */
export function filterBar(filters, { points, frame, taskList, taskError, onChange }) {
  const current = { ...filters };
  const edit = (change) => {
    Object.assign(current, change);
    onChange({ ...current });
  };
  const timers = {};
  const problems = {};
  const problem = h("span", { class: "map-filter-problem", id: "map-filter-problem", role: "status" });
  const inputs = {};
  const numberInput = (key, label, range) => {
    const input = h("input", { id: `map-${key}`, name: key, value: filters[key], size: 9, placeholder: `all (${span(range)})`,
      title: `${label}: numbers and ranges, e.g. 0-3,7 (this map has ${span(range)}); blank for all`, "aria-label": `${label} filter` });
    const apply = () => {
      clearTimeout(timers[key]);
      try {
        parseNumbers(input.value);
        input.removeAttribute("aria-invalid");
        problems[key] = "";
        edit({ [key]: input.value.trim() });
      } catch (err) {
        input.setAttribute("aria-invalid", "true");
        problems[key] = `${label}: ${err.message}`;
      }
      problem.textContent = Object.values(problems).filter(Boolean).join("; ");
    };
    input.addEventListener("input", () => {
      clearTimeout(timers[key]);
      timers[key] = setTimeout(apply, TYPING_PAUSE_MS);
    });
    input.addEventListener("change", apply);
    inputs[key] = input;
    return h("label", { class: "inline" }, `${label} `, input);
  };

  const perTask = new Map();
  for (const t of points.task) perTask.set(taskName(t), (perTask.get(taskName(t)) || 0) + 1);
  const listed = new Set((taskList || []).map((t) => t.name));
  const option = (value, text, extra = {}) => h("option", { value, selected: value === filters.task, ...extra }, text);
  const taskOptions = [option("", "all tasks")];
  for (const t of taskList || []) {
    const n = perTask.get(t.name) || 0;
    taskOptions.push(option(t.name, `${t.name} (${int(n)} points)`, { title: t.description, disabled: n === 0 && t.name !== filters.task }));
  }
  // Points whose task the server's list lacks: the map's pasted completions (no task), or a task retired
  // since the map was made. They are data on this map, so they stay selectable.
  for (const [name, n] of [...perTask.entries()].sort()) {
    if (!listed.has(name) && (taskList || name === filters.task)) taskOptions.push(option(name, `${name === "pasted" ? "pasted (no task)" : name} (${int(n)} points)`));
  }
  const task = h("select", { id: "map-task", "aria-label": "task filter", onchange: (e) => edit({ task: e.target.value }) }, taskOptions);
  const correct = h("select", { id: "map-correct", "aria-label": "first-token correctness filter", onchange: (e) => edit({ correct: e.target.value }) },
    OUTCOMES.map(([value, text]) => h("option", { value, selected: value === filters.correct }, text)));
  const clear = h("button", { type: "button", class: "small", id: "map-clear-filters", onclick: () => {
    for (const [key, input] of Object.entries(inputs)) {
      clearTimeout(timers[key]);
      input.value = "";
      input.removeAttribute("aria-invalid");
      problems[key] = "";
    }
    task.value = "";
    correct.value = "";
    problem.textContent = "";
    edit({ layer: "", head: "", task: "", correct: "" });
  } }, "clear filters");
  return h("div", { class: "filters map-filters", id: "map-filters" },
    numberInput("layer", "layers", frame.layer), numberInput("head", "heads", frame.head),
    task, correct, clear, problem, taskError ? errorBox(taskError) : null);
}

/** The hidden completions, each with an undo, and one undo for all. */
export function exclusionList(exclude, { perInference, onUndo }) {
  if (!exclude.length) return null;
  const chip = (id) => {
    const known = perInference.get(id);
    const what = known ? ` · ${known.task} · ${int(known.points)} points` : " · not on the loaded map";
    return h("span", { class: "map-exclusion", dataset: { inference: String(id) } },
      h("a", { href: `#/inference/${id}` }, `completion #${id}`), what, " ",
      h("button", { type: "button", class: "small", title: `show completion #${id} again`, onclick: () => onUndo([id]) }, "undo"));
  };
  return h("div", { class: "map-exclusions", id: "map-exclusions" },
    h("strong", {}, `Hidden completions (${exclude.length}):`), " ", exclude.map(chip),
    exclude.length > 1 ? h("button", { type: "button", class: "small", id: "map-undo-all", onclick: () => onUndo(exclude) }, "undo all") : null);
}

/** Each completion's points and task on the loaded map: Map(inference id -> {points, task}). */
export function completionsOf(points) {
  const out = new Map();
  for (let i = 0; i < points.id.length; i++) {
    const id = points.inference[i];
    const entry = out.get(id);
    if (entry) entry.points += 1;
    else out.set(id, { points: 1, task: taskName(points.task[i]) });
  }
  return out;
}
