// Jobs: a "New job" form (build an atlas, cluster, map, train predictors: POST /api/jobs), then every job with
// its progress bar, ETA, place in the queue, parameters, result, message and error; cancel; refreshed while any
// is unfinished.
// URL: #/jobs?state=running&kind=atlas_build
//
// The form draws itself from the server: the kinds and their fields (defaults, limits, descriptions) from
// GET /api/jobs/kinds, the tasks from GET /api/tasks, the corpora from GET /api/corpora. The server checks every
// value (the form sets `novalidate`), so a bad value comes back in the API's words, shown beside the form.

import { api, has, query, tasks } from "../api.js";
import { setState } from "../url.js";
import { errorBox, fill, h, withStatus } from "../dom.js";
import { FINISHED, jobBlock } from "../jobs.js";

const STATES = ["", "queued", "running", "succeeded", "failed", "cancelled"];
const REFRESH_MS = 1000;
const label = (name) => name.replace(/_/g, " ");

/** One field's input: a number box, a select (corpora, models) or a row of task checkboxes. */
function fieldInput(field, id, { taskList, corpora }) {
  if (field.type === "integer") {
    return h("input", { type: "number", id, name: field.name, step: "1", min: field.minimum ?? undefined, max: field.maximum ?? undefined,
      value: field.default ?? "", placeholder: field.default === null ? "server default" : undefined, size: 8 });
  }
  if (field.type === "list") {
    // Tasks: ticked = sent; none ticked = left out (the server's default, which the hint says).
    const ticked = new Set(Array.isArray(field.default) ? field.default : []);
    const boxes = (taskList || []).map((t) => h("label", { class: "inline task-choice", title: t.description },
      h("input", { type: "checkbox", name: field.name, value: t.name, checked: ticked.has(t.name) }), ` ${t.name}`));
    const all = (on) => (e) => { e.preventDefault(); boxes.forEach((b) => { b.querySelector("input").checked = on; }); };
    return h("div", { class: "task-choices", id, role: "group", "aria-label": label(field.name) }, boxes,
      h("span", { class: "choice-buttons" }, h("button", { type: "button", class: "small", onclick: all(true) }, "all"), h("button", { type: "button", class: "small", onclick: all(false) }, "none")));
  }
  const options = field.choices_from === "/api/corpora"
    ? (corpora || []).map((c) => ({ value: c.name, text: `${c.name}: ${c.description}${c.available ? "" : " (missing on the server)"}`, disabled: !c.available }))
    : (field.choices || []).map((c) => ({ value: c, text: c }));
  if (!options.length) return h("input", { type: "text", id, name: field.name, value: field.default ?? "", maxlength: field.max_length ?? undefined });
  return h("select", { id, name: field.name },
    options.map((o) => h("option", { value: o.value, selected: o.value === field.default, disabled: o.disabled }, o.text)));
}

function limits(field) {
  if (field.minimum !== null && field.maximum !== null) return `${field.minimum}–${field.maximum}`;
  if (field.type === "list" && field.max_length !== null) return `up to ${field.max_length}`;
  return null;
}

/** The body to post: every field the user set; an empty one is left out, so the server's default applies. */
function bodyOf(kind, form) {
  const body = { kind: kind.kind };
  for (const field of kind.fields) {
    if (field.type === "list") {
      const picked = [...form.querySelectorAll(`input[name="${field.name}"]:checked`)].map((b) => b.value);
      if (picked.length) body[field.name] = picked;
      continue;
    }
    const raw = form.elements[field.name].value.trim();
    if (raw === "") continue;
    body[field.name] = field.type === "integer" ? Number(raw) : raw;
  }
  return body;
}

/** The field an API error is about: a validation error's `loc` names it; a corpus error is the corpus's. */
function erroneousFields(err, kind) {
  const names = new Set(kind.fields.map((f) => f.name));
  const found = new Map();
  for (const e of err.errors || []) {
    const name = (e.loc || []).find((part) => names.has(part));
    if (name && !found.has(name)) found.set(name, e.msg);
  }
  if (err.code === "corpus_error" && names.has("corpus")) found.set("corpus", err.message);
  return found;
}

async function newJobPanel(onQueued) {
  const panel = h("section", { class: "panel new-job", id: "new-job" }, h("h2", {}, "New job"));
  if (!(await has("/api/jobs/kinds"))) {
    panel.append(h("p", { class: "muted" }, "This server cannot queue jobs from the page yet."));
    return { panel, select: () => {} };
  }
  const [kinds, taskList, corpora] = await Promise.all([api("/api/jobs/kinds"), tasks(), api("/api/corpora")]);
  const kindSelect = h("select", { id: "job-kind", name: "kind" }, kinds.map((k) => h("option", { value: k.kind }, k.title)));
  const about = h("p", { class: "muted small", id: "job-kind-about" });
  const fields = h("div", { class: "job-fields" });
  const formError = h("div", { id: "job-form-error" });
  const submit = h("button", { type: "submit", class: "primary", id: "job-submit" }, "Queue job");
  const form = h("form", { id: "job-form", novalidate: true },
    h("div", { class: "filters" }, h("label", {}, "kind ", kindSelect)), about, fields, h("div", { class: "actions" }, submit), formError);
  panel.append(form);
  let kind = kinds[0];

  function select(name) {
    kind = kinds.find((k) => k.kind === name) || kinds[0];
    kindSelect.value = kind.kind;
    fill(about, kind.description, " Queues the same job as ", h("code", {}, kind.command), ".");
    fill(fields, kind.fields.length ? kind.fields.map((field) => {
      const id = `job-field-${field.name}`;
      const hint = [field.description, limits(field)].filter(Boolean).join(" · ");
      return h("div", { class: "job-field", dataset: { field: field.name } },
        h("label", { for: id }, label(field.name)),
        fieldInput(field, id, { taskList, corpora }),
        h("div", { class: "muted small hint" }, hint),
        h("div", { class: "field-error", role: "alert" }));
    }) : h("p", { class: "muted small" }, "No options: it works on the served model's atlas."));
    fill(formError);
  }
  kindSelect.addEventListener("change", () => {
    select(kindSelect.value);
    setState({ kind: kind.kind });
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(formError);
    for (const slot of fields.querySelectorAll(".field-error")) fill(slot);
    for (const bad of fields.querySelectorAll("[aria-invalid]")) bad.removeAttribute("aria-invalid");
    submit.disabled = true;  // one click, one job: the server queues a second identical job if asked twice
    try {
      const job = await api("/api/jobs", { method: "POST", body: bodyOf(kind, form) });
      fill(formError, h("p", { class: "muted", role: "status", id: "job-queued" }, `Queued job #${job.id} (${job.kind}).`));
      onQueued(job);
    } catch (err) {
      fill(formError, errorBox(err));
      for (const [name, message] of erroneousFields(err, kind)) {
        const box = fields.querySelector(`.job-field[data-field="${name}"]`);
        box?.querySelector("input, select, .task-choices")?.setAttribute("aria-invalid", "true");
        if (box) fill(box.querySelector(".field-error"), message);
      }
    } finally {
      submit.disabled = false;
    }
  });
  return { panel, select };
}

export async function render(root, route) {
  let state = route.params.get("state") || "";
  const status = h("div");
  const list = h("div", { class: "jobs", id: "job-list" });
  const stateSelect = h("select", { "aria-label": "state" }, STATES.map((s) => h("option", { value: s, selected: s === state }, s || "all states")));
  const formSlot = h("div");
  const deletedNote = h("div", { id: "deleted-note" });
  fill(root, h("div", { class: "title-row" }, h("h1", {}, "Jobs"), h("label", {}, "show ", stateSelect)), formSlot, deletedNote, status, list);
  // A deleted result is said in words (what went, and the reports that keep a copy), then the list redraws.
  const onDeleted = (_job, text) => {
    fill(deletedNote, h("div", { class: "notice", role: "status" }, text));
    refresh();
  };
  let timer = null;
  let stopped = false;

  async function refresh() {
    clearTimeout(timer);
    const jobs = await withStatus(status, "Loading jobs", () => api(`/api/jobs${query({ state, limit: 100 })}`));
    if (stopped) return;
    if (jobs) {
      fill(list, jobs.length ? jobs.map((j) => jobBlock(j, { onChange: refresh, onDeleted })) : h("p", { class: "muted" }, "No jobs."));
      // Fast while something runs; slowly otherwise, so jobs queued elsewhere still appear.
      timer = setTimeout(refresh, jobs.some((j) => !FINISHED.has(j.state)) ? REFRESH_MS : 5 * REFRESH_MS);
    }
  }
  function showQueued(job) {
    // The new job at once, at the top, as the list draws it (its place in the queue included); a filter that
    // would hide a queued job is lifted so that it stays in sight when the list refreshes.
    if (state && state !== job.state) {
      state = "";
      stateSelect.value = "";
      setState({ state });
    }
    list.querySelector(`.job[data-job-id="${job.id}"]`)?.remove();
    list.querySelector("p.muted")?.remove();
    list.prepend(jobBlock(job, { onChange: refresh, onDeleted }));
    refresh();
  }
  stateSelect.addEventListener("change", () => {
    state = stateSelect.value;
    setState({ state });
    refresh();
  });
  const loadingList = refresh();
  try {
    const { panel, select } = await newJobPanel(showQueued);
    fill(formSlot, panel);
    select(route.params.get("kind") || "");
  } catch (err) {
    // A server that wants a token: the job list asks for it; a second token form here would only repeat it.
    if (err.code !== "unauthorized") fill(formSlot, h("section", { class: "panel new-job", id: "new-job" }, h("h2", {}, "New job"), errorBox(err)));
  }
  await loadingList;
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
