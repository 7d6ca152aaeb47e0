// Jobs: one job's progress as a row (bar, ETA, message, error, cancel), and polling until it finishes.

import { api } from "./api.js";
import { duration, fill, h, int } from "./dom.js";

export const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

export function progressBar(done, total) {
  const frac = total ? Math.min(1, done / total) : 0;
  return h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(total ?? 0), "aria-valuenow": String(done) },
    h("div", { class: "bar", style: `width:${(100 * frac).toFixed(1)}%` }));
}

function timing(job) {
  const at = (iso) => new Date(iso).toLocaleString("en-GB", { dateStyle: "short", timeStyle: "short" });
  if (job.finished_at && job.started_at) return `finished ${at(job.finished_at)}, took ${duration((new Date(job.finished_at) - new Date(job.started_at)) / 1000)}`;
  if (job.started_at) return `started ${at(job.started_at)}`;
  return `queued ${at(job.created_at)}`;
}

/** A job's parameters or result in one line: its plain values (lists shortened; nested objects left out). */
function summaryLine(label, values, cls) {
  const shown = Object.entries(values || {}).filter(([, v]) => v !== null && typeof v !== "object" || Array.isArray(v) && v.every((x) => typeof x !== "object"))
    .map(([k, v]) => `${k} ${Array.isArray(v) ? (v.length > 8 ? `${v.slice(0, 8).join(", ")}, … (${v.length})` : v.join(", ")) : v}`);
  return shown.length ? h("div", { class: `muted small ${cls}` }, `${label}: `, shown.join(" · ")) : null;
}

// What a deletion removed, in words (DELETE /api/jobs/{id}/result's answer).
function deletedText(d) {
  const parts = [d.job_deleted ? `job #${d.job_id} and its result` : null,
    d.maps.length ? `map ${d.maps.join(", ")} with its points` : null,
    d.clusterings.length ? `clustering ${d.clusterings.join(", ")} with its clusters` : null,
    d.predictors.length ? `predictors ${d.predictors.map((p) => `#${p}`).join(", ")}` : null].filter(Boolean);
  const copies = d.reports_keeping_a_copy.length ? ` Findings reports ${d.reports_keeping_a_copy.map((r) => `#${r}`).join(", ")} keep their own copy of it.` : "";
  return `Deleted ${parts.join(", ") || "nothing (the result was already gone)"}.${copies}`;
}

/** A finished job's "Delete result" button (not for builds: their inferences are the atlas). */
function deleteButton(job, onDeleted) {
  if (!onDeleted || !FINISHED.has(job.state) || job.kind === "atlas_build") return null;
  return h("button", { class: "small delete-result", onclick: async (e) => {
    if (!window.confirm(`Delete the result of job #${job.id} (${job.kind})? This cannot be undone.`)) return;
    e.target.disabled = true;
    try {
      onDeleted(job, deletedText(await api(`/api/jobs/${job.id}/result`, { method: "DELETE" })));
    } catch (err) {
      // 409 in_use names the results that still use this one: delete those first.
      e.target.replaceWith(h("span", { class: "error", role: "alert" }, err.message));
    }
  } }, "Delete result");
}

/** A job as a block; `onChange(job)` is called after a cancel, `onDeleted(job, text)` after a deletion (only
 * with it is there a "Delete result" button). */
export function jobBlock(job, { onChange, onDeleted } = {}) {
  const cancel = !FINISHED.has(job.state) && !job.cancel_requested
    ? h("button", { class: "small", onclick: async (e) => {
        // Cancelling a long job is not undone by a second click: ask first.
        if (!window.confirm(`Cancel job #${job.id} (${job.kind})? What it finished stays; a cancelled job is not resumed.`)) return;
        e.target.disabled = true;
        try {
          onChange?.(await api(`/api/jobs/${job.id}/cancel`, { method: "POST" }));
        } catch (err) {
          e.target.replaceWith(h("span", { class: "error" }, err.message));
        }
      } }, "Cancel")
    : null;
  const total = job.progress_total;
  return h("div", { class: `job state-${job.state}`, dataset: { jobId: job.id, state: job.state, done: job.progress_done } },
    h("div", { class: "job-head" },
      h("strong", {}, `#${job.id} ${job.kind}`),
      h("span", { class: `badge state-${job.state}` }, job.cancel_requested && !FINISHED.has(job.state) ? "cancelling" : job.state),
      h("span", { class: "num" }, `${int(job.progress_done)} / ${total === null ? "?" : int(total)}`),
      job.eta_seconds !== null && job.eta_seconds !== undefined ? h("span", { class: "muted eta", title: job.eta_basis ? `from ${job.eta_basis}` : null }, `ETA ${duration(job.eta_seconds)}`, job.eta_basis ? h("span", { class: "small" }, ` (from ${job.eta_basis})`) : null) : null,
      job.queue_place ? h("span", { class: "muted queue-place" }, job.queue_place === 1 ? "next in the queue" : `place ${job.queue_place} in the queue`) : null,
      cancel, deleteButton(job, onDeleted)),
    progressBar(job.progress_done, total),
    h("div", { class: "muted" }, [job.message, timing(job)].filter(Boolean).join(" · ")),
    summaryLine("parameters", job.parameters, "job-parameters"),
    job.state === "succeeded" ? summaryLine("result", job.result, "job-result") : null,
    job.error ? h("div", { class: "error", role: "alert" }, job.error) : null);
}

/** Poll a job every `everyMs` until it finishes or `signal` aborts; `onUpdate(job)` sees every state. */
export async function pollJob(id, onUpdate, { signal, everyMs = 1000 } = {}) {
  for (;;) {
    const job = await api(`/api/jobs/${id}`, { signal });
    onUpdate(job);
    if (FINISHED.has(job.state)) return job;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, everyMs);
      signal?.addEventListener("abort", () => { clearTimeout(timer); reject(new DOMException("aborted", "AbortError")); }, { once: true });
    });
  }
}

export function showJob(slot, job, options) {
  fill(slot, jobBlock(job, options));
}

/**
 * "Not yet", calmly: before an analysis's result exists (GET /api/analyses/status), a notice that says what is
 * queued or running (with the job's progress), or how to make one; when the job succeeds, `onReady()` runs
 * (the page renders itself again). Returns null when the result is ready, else the notice element.
 */
export async function notYet(kind, onReady, { signal } = {}) {
  const statuses = await api("/api/analyses/status", { signal });
  const status = statuses.find((s) => s.kind === kind);
  if (!status || status.ready) return null;
  const slot = h("div");
  const notice = h("div", { class: "notice not-yet", id: `not-yet-${kind}`, role: "status", dataset: { state: status.state } },
    h("p", {}, status.message), slot);
  if (status.job && !FINISHED.has(status.job.state)) {
    showJob(slot, status.job);
    pollJob(status.job.id, (job) => showJob(slot, job), { signal, everyMs: 2000 })
      .then((job) => { if (job.state === "succeeded") onReady(); else notice.dataset.state = job.state; })
      .catch((err) => { if (err.name !== "AbortError") fill(slot, h("p", { class: "error" }, err.message)); });
  }
  return notice;
}
