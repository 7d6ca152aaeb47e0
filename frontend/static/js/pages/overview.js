// Atlas overview: the model and checkpoint, counts, build progress, the models the atlas holds (each a link that
// shows it), tasks with accuracy, predictors, the heads that matter per task, and a filterable list of the shown
// model's completions (filters live in the URL). While a build runs, the counts, the build card and the task
// table refresh themselves.

import { api, query, tasks } from "../api.js";
import { atlasModels, modelHref } from "../models.js";
import { chosenModel, setState } from "../url.js";
import { downloadLink, duration, errorBox, fill, h, int, pct, verdict, withStatus } from "../dom.js";
import { importantHeads, predictorAccuracy, signedShap } from "../important_heads.js";
import { progressBar } from "../jobs.js";

const PAGE_SIZE = 25;
const TYPING_PAUSE_MS = 300;
const LIVE_EVERY_MS = 3000;
const TOP_HEADS = 5;

function card(title, ...body) {
  return h("section", { class: "card" }, h("h3", {}, title), ...body);
}

// Code-point order, as the server and Python sort names (localeCompare would weigh "_" differently).
const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** The task table: one row per task the atlas has completions of (the served model's counts, in name order). */
function taskTable(taskList, pick) {
  const rows = taskList.filter((t) => t.inferences > 0).sort(byName);
  if (rows.length === 0) return h("p", { class: "muted" }, "No tasks yet.");
  return h("table", { class: "compact", id: "task-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "task"), h("th", {}, "completions"), h("th", {}, "first-token accuracy [95% CI]"), h("th", {}, ""))),
    h("tbody", {}, rows.map((t) => h("tr", {},
      h("td", { title: t.description }, h("a", { href: `#/?task=${encodeURIComponent(t.name)}`, onclick: (e) => { e.preventDefault(); pick(t.name); } }, t.name)),
      h("td", { class: "num" }, int(t.inferences)),
      h("td", { class: "num task-accuracy" }, pct(t.first_token_correct / t.inferences),
        t.first_token_accuracy_low === null || t.first_token_accuracy_low === undefined ? null
          : h("span", { class: "muted" }, ` [${pct(t.first_token_accuracy_low)}, ${pct(t.first_token_accuracy_high)}]`)),
      h("td", { class: "barcell" }, progressBar(t.first_token_correct, t.inferences))))));
}

async function predictorsCard() {
  const predictors = await api("/api/predictors");
  if (!Array.isArray(predictors) || predictors.length === 0)
    return card("Correctness predictors", h("p", { class: "muted" }, "None trained yet: the demo atlas trains them after its build, clustering and map; or run `attnlens predictors train`."));
  // One row per task, one column per predictor kind: comparing kinds on a task is what the table is for.
  const kinds = [...new Set(predictors.map((p) => p.kind ?? p.name))].sort();
  const byTask = new Map();
  for (const p of predictors) {
    if (!byTask.has(p.task)) byTask.set(p.task, {});
    byTask.get(p.task)[p.kind ?? p.name] = p;
  }
  const cell = (p) => {
    if (!p) return h("td", { class: "muted" }, "–");
    const above = p.accuracy_low > p.chance;
    // The accuracy links to the predictor's page: its folds, shuffled control, reliability and head importances.
    return h("td", { class: above ? "above-chance" : "", title: above ? "95% interval above chance" : "95% interval contains chance (or lies below it)" },
      h("a", { class: "predictor-link", href: `#/predictor/${p.id}`, title: "how this predictor was measured: folds, shuffled-label control, reliability, head importance" },
        `${pct(p.accuracy)} [${pct(p.accuracy_low)}, ${pct(p.accuracy_high)}]`), h("span", { class: "muted" }, ` · n=${p.n_rows}`));
  };
  const tasks = [...byTask.keys()].sort();
  const anyRow = (task) => Object.values(byTask.get(task))[0];
  return h("section", { class: "card wide", id: "predictors" },
    h("div", { class: "title-row" }, h("h3", {}, "Correctness predictors"), h("span", { class: "actions" }, downloadLink("/api/exports/predictors.csv", "predictors.csv", "export-predictors", "CSV"),
      downloadLink("/api/exports/predictors.parquet", "predictors.parquet", "export-predictors-parquet", "Parquet"))),
    h("table", { class: "compact" },
      h("thead", {}, h("tr", {}, h("th", {}, "task"), h("th", {}, "chance"), ...kinds.map((k) => h("th", {}, `${k}: CV accuracy [95% CI]`)))),
      h("tbody", {}, tasks.map((task) => h("tr", {}, h("td", {}, task), h("td", {}, pct(anyRow(task).chance)), ...kinds.map((k) => cell(byTask.get(task)[k])))))),
    h("p", { class: "muted" }, "Bold: the interval lies above chance (the majority-class rate). An interval that contains chance means the predictor is not distinguishable from always guessing the majority class on this many rows. `noise` is a control with arbitrary labels: a bold row there is a false positive, which 95% intervals give about once in 40 tests."),
  );
}

/** Per task, the heads its most accurate head-ranking predictor leans on (GET /api/predictors/heads). */
async function headsCard() {
  const rows = await importantHeads(TOP_HEADS);
  if (!rows.length) return null;
  return h("section", { class: "card wide", id: "important-heads" },
    h("h3", {}, "Heads that matter, per task"),
    h("table", { class: "compact" },
      h("thead", {}, h("tr", {}, h("th", {}, "task"), h("th", {}, "predictor: CV accuracy [95% CI]"), h("th", {}, `top ${TOP_HEADS} heads by mean |SHAP| (signed mean)`))),
      h("tbody", {}, rows.map((r) => h("tr", { class: r.above_chance ? "above-chance-row" : "muted", dataset: { task: r.task ?? "" } },
        h("td", {}, r.task ?? "all"),
        h("td", {}, h("a", { href: `#/predictor/${r.predictor_id}` }, predictorAccuracy(r)),
          r.above_chance ? null : h("span", { title: "the 95% interval does not lie above chance" }, ` · not above chance ${pct(r.chance)}`)),
        h("td", { class: "heads" }, r.heads.map((x, i) => [i ? ", " : "",
          h("a", { href: `#/predictor/${r.predictor_id}?head=${x.name}`, title: `mean |SHAP| ${x.mean_abs_shap.toFixed(4)} · signed mean ${signedShap(x.mean_shap)}` }, x.name),
          h("span", { class: "muted" }, ` (${signedShap(x.mean_shap)})`)])))))),
    h("p", { class: "muted" }, "A head ranks high when its pattern moves the predictor's log-odds of a correct completion most (mean |SHAP| over the training rows). Grey rows: the predictor is not distinguishable from chance, so its ranking is no evidence that those heads carry the task. Each head opens its place on the predictor's page."));
}

/** The models the atlas holds side by side (GET /api/atlas/models), each a link that shows it. */
function modelsCard(models) {
  if (!Array.isArray(models)) return h("section", { class: "card wide", id: "atlas-models" }, h("h3", {}, "Models in this atlas"), errorBox(models));
  const shown = chosenModel() ?? models.find((m) => m.served)?.name;
  // An embedder is a checkpoint folder or name: its last part tells them apart, the title says it whole.
  const embedderText = (e) => (e.embedder ?? "not recorded").split("/").filter(Boolean).pop();
  return h("section", { class: "card wide", id: "atlas-models" },
    h("h3", {}, models.length === 1 ? "Model in this atlas" : `Models in this atlas (${models.length})`),
    h("table", { class: "compact", id: "models-table" },
      h("thead", {}, h("tr", {}, ["model", "family", "completions", "head patterns", "grid (layers × heads)", "embedded by", "served", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, models.map((m) => h("tr", { class: m.name === shown ? "shown-model" : null, dataset: { model: m.name } },
        h("td", {}, h("strong", {}, m.name)),
        h("td", {}, m.family ?? h("span", { class: "muted" }, "unknown")),
        h("td", { class: "num model-inferences" }, int(m.inferences), m.pasted_inferences ? h("span", { class: "muted" }, ` (+${int(m.pasted_inferences)} pasted)`) : null),
        h("td", { class: "num model-patterns" }, int(m.head_patterns)),
        h("td", { class: "num model-grid" }, m.n_layers === null ? "–" : `${m.n_layers} × ${m.n_heads}`),
        h("td", { class: "path" }, m.embedders.length === 0 ? "–" : m.embedders.map((e, i) => [i ? ", " : "", h("span", { title: `${e.embedder ?? "not recorded"}: ${int(e.inferences)} completions` }, embedderText(e))])),
        h("td", {}, m.served ? "served" : ""),
        h("td", {}, m.name === shown ? h("span", { class: "muted" }, "shown") : h("a", { class: "show-model", href: modelHref(m) }, "show this model")))))),
    h("p", { class: "muted" }, models.length === 1
      ? "Another model's atlas built into this data dir (serve it, then build) joins this one here, with its own completions, patterns and analyses; the header then switches between them."
      : "Each model's completions, patterns and analyses are its own; the pages show the model chosen here or in the header. Pasted code and ablations always run on the served model."));
}

/** When the URL chose another model than the served one: what on this page is that model's. */
function shownNotice(w) {
  const chosen = chosenModel();
  if (!chosen || chosen === w.model_name) return null;
  return h("p", { class: "notice", id: "shown-model-notice", role: "note" }, h("strong", {}, `Showing ${chosen}. `),
    `Its tasks, predictors, heads and completions are below; the Model and AP-MAE cards describe the served model ${w.model_name ?? "(none)"}, and Counts the whole atlas.`);
}

function countsCard(a, several = false) {
  return h("section", { class: "card", id: "counts-card" }, h("h3", {}, several ? "Counts (every model)" : "Counts"),
    h("dl", { class: "counts" },
      h("dt", {}, "scenarios"), h("dd", {}, int(a.scenarios)),
      h("dt", {}, "inferences"), h("dd", { id: "count-inferences" }, int(a.inferences)),
      h("dt", {}, "pasted (kept apart)"), h("dd", {}, int(a.pasted_inferences ?? 0)),
      h("dt", {}, "first token right"), h("dd", {}, `${int(a.inferences_first_token_correct)} (${pct(a.inferences ? a.inferences_first_token_correct / a.inferences : null)})`),
      h("dt", {}, "head patterns"), h("dd", {}, int(a.head_patterns))));
}

const building = (jobs) => jobs.some((j) => j.kind === "atlas_build" && (j.state === "running" || j.state === "queued"));

function buildCard(jobs) {
  const builds = jobs.filter((j) => j.kind === "atlas_build");
  if (builds.length === 0) return h("section", { class: "card", id: "build-card" }, h("h3", {}, "Atlas build"), h("p", { class: "muted" }, "No build yet: run `attnlens atlas build`, or start one on the Jobs page."));
  const job = builds.find((j) => j.state === "running") || builds[0];
  return h("section", { class: "card", id: "build-card", dataset: { state: job.state } }, h("h3", {}, "Atlas build"),
    h("p", {}, h("a", { href: `#/jobs?job=${job.id}` }, `job ${job.id}`), ` · ${job.state} · ${int(job.progress_done)} / ${int(job.progress_total)}`),
    progressBar(job.progress_done, job.progress_total),
    h("p", { class: "muted" }, job.message || "", job.eta_seconds ? ` · ETA ${duration(job.eta_seconds)}${job.eta_basis ? ` (from ${job.eta_basis})` : ""}` : ""),
    job.error ? h("div", { class: "error" }, job.error) : null,
    building(jobs) ? h("p", { class: "muted small" }, "The counts on this page refresh every few seconds while it runs.") : null,
  );
}

function inferenceTable(page) {
  if (page.items.length === 0) return h("p", { class: "muted" }, "No completions match these filters.");
  return h("table", { class: "list", id: "inference-list" },
    h("thead", {}, h("tr", {}, ["id", "task", "file", "target", "completion", "first token", "whole span", "p(expected)"].map((t) => h("th", {}, t)))),
    h("tbody", {}, page.items.map((it) =>
      h("tr", { class: it.source === "pasted" ? "pasted" : null },
        h("td", {}, h("a", { href: `#/inference/${it.id}` }, `#${it.id}`), it.source === "pasted" ? h("span", { class: "muted source-pasted", title: "pasted code: not part of the atlas's analyses" }, " pasted") : null),
        h("td", {}, it.task ?? "pasted"),
        h("td", { class: "path" }, it.file_path ?? ""),
        h("td", {}, h("code", {}, it.target_text ?? "")),
        h("td", {}, h("code", {}, it.completion_text)),
        h("td", {}, verdict(it.first_token_correct)),
        h("td", { class: "span-correct" }, verdict(it.span_correct)),
        h("td", { class: "num" }, it.expected_token_prob === null ? "–" : it.expected_token_prob.toFixed(3)),
      ))));
}

export async function render(root, route) {
  const p = route.params;
  const filters = { task: p.get("task") || "", correct: p.get("correct") || "", q: p.get("q") || "", offset: Number(p.get("offset") || 0) };
  const status = h("div");
  fill(root, h("h1", {}, "Atlas"), status);
  // One request for every task's counts (fresh: the atlas may have grown since this page load). Its error is
  // shown in the task table, not instead of the page.
  const taskInfo = tasks({ fresh: true });
  taskInfo.catch(() => {});
  const modelInfo = atlasModels({ fresh: true }).catch((err) => err);
  const loaded = await withStatus(status, "Loading the atlas", () => Promise.all([api("/api/health"), api("/api/jobs?limit=50")]));
  if (!loaded) return;
  const [health, jobs] = loaded;
  const models = await modelInfo;
  const several = Array.isArray(models) && models.length > 1;
  const w = health.worker;
  const a = health.atlas;
  const taskList = await taskInfo.catch((err) => err);
  const known = Array.isArray(taskList) ? [...taskList].sort(byName) : [];

  const cards = h("div", { class: "cards" },
    card("Model", h("p", { class: "big" }, w.model_name ?? "none"),
      w.model?.weights ? h("p", { id: "model-weights" }, w.model.weights) : null,
      h("p", { class: "muted" }, w.model ? `${w.model.n_layers} layers × ${w.model.n_heads} heads · ${int(w.model.n_params)} parameters · ${w.state}` : w.state),
      w.error ? h("div", { class: "error" }, w.error) : null),
    card("AP-MAE checkpoint", h("p", { class: "path" }, w.apmae?.checkpoint ?? "none"),
      h("p", { class: "muted" }, w.apmae ? `${w.apmae.embedding_dim}-d embeddings · ${w.apmae.decoder_mode} decoder${w.apmae.trained_on ? ` · trained on ${w.apmae.trained_on}` : ""}` : (w.apmae_error ?? "not loaded")),
      // A checkpoint trained on another model's patterns embeds this model's patterns out of distribution.
      w.apmae?.warning ? h("p", { class: "notice", id: "apmae-warning" }, w.apmae.warning) : null),
    countsCard(a, several),
    buildCard(jobs),
    modelsCard(models),
    await predictorsCard().catch(errorBox),
    await headsCard().catch(errorBox),
  );
  const taskSlot = h("div");
  const listSlot = h("div");
  const taskSelect = h("select", { name: "task", "aria-label": "task" }, h("option", { value: "" }, "all tasks"),
    known.map((t) => h("option", { value: t.name, title: t.description, selected: t.name === filters.task }, t.name)));
  const correctSelect = h("select", { name: "correct", "aria-label": "first token" },
    [["", "right or wrong"], ["true", "first token right"], ["false", "first token wrong"]].map(([v, l]) => h("option", { value: v, selected: v === filters.correct }, l)));
  const search = h("input", { type: "search", name: "q", placeholder: "text in target or completion", value: filters.q });
  const pager = h("div", { class: "pager" });

  async function loadList() {
    setState({ task: filters.task, correct: filters.correct, q: filters.q, offset: filters.offset || "" });
    // The shown model's completions (the chosen one's, else the served one's), as the task table counts them.
    const page = await withStatus(listSlot, "Loading completions", () =>
      api(`/api/inferences${query({ task: filters.task, first_token_correct: filters.correct, q: filters.q, limit: PAGE_SIZE, offset: filters.offset, model: chosenModel() ?? w.model_name })}`));
    if (!page) return;
    fill(listSlot, inferenceTable(page));
    const last = Math.min(page.total, page.offset + page.items.length);
    fill(pager,
      h("button", { disabled: page.offset === 0, onclick: () => { filters.offset = Math.max(0, page.offset - PAGE_SIZE); loadList(); } }, "← newer"),
      h("span", {}, `${page.total ? page.offset + 1 : 0}–${last} of ${int(page.total)}`),
      h("button", { disabled: last >= page.total, onclick: () => { filters.offset = page.offset + PAGE_SIZE; loadList(); } }, "older →"));
  }
  const apply = () => {
    Object.assign(filters, { task: taskSelect.value, correct: correctSelect.value, q: search.value.trim(), offset: 0 });
    loadList();
  };
  taskSelect.addEventListener("change", apply);
  correctSelect.addEventListener("change", apply);
  // The text filter applies as you type (after a pause, so that one word is one request, not one per key).
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(apply, TYPING_PAUSE_MS);
  });

  fill(root, h("h1", {}, "Atlas"), shownNotice(w), cards,
    h("section", { class: "panel" }, h("h2", {}, "Tasks"), taskSlot),
    h("section", { class: "panel" },
      h("div", { class: "title-row" }, h("h2", {}, "Completions"), h("span", { class: "actions" }, "Every completion as ",
        downloadLink("/api/exports/inferences.csv", "inferences.csv", "export-inferences", "CSV"),
        downloadLink("/api/exports/inferences.parquet", "inferences.parquet", "export-inferences-parquet", "Parquet"))),
      h("div", { class: "filters" }, taskSelect, correctSelect, search), listSlot, pager));
  const pickTask = (name) => { taskSelect.value = name; apply(); };
  fill(taskSlot, Array.isArray(taskList) ? taskTable(taskList, pickTask) : errorBox(taskList));
  loadList();

  // While a build runs the atlas grows: refresh what counts it (not the list, which the user may be reading).
  let timer = null;
  let stopped = false;
  const live = async () => {
    try {
      const [fresh, freshJobs, freshTasks] = await Promise.all([api("/api/health"), api("/api/jobs?limit=50"), tasks({ fresh: true })]);
      if (stopped) return;
      cards.querySelector("#counts-card").replaceWith(countsCard(fresh.atlas, several));
      cards.querySelector("#build-card").replaceWith(buildCard(freshJobs));
      fill(taskSlot, taskTable(freshTasks, pickTask));
      if (building(freshJobs)) timer = setTimeout(live, LIVE_EVERY_MS);
    } catch {
      if (!stopped) timer = setTimeout(live, 4 * LIVE_EVERY_MS); // a hiccup (server restarting): try later
    }
  };
  if (building(jobs)) timer = setTimeout(live, LIVE_EVERY_MS);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
