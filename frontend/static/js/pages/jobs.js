// Jobs: every job with its progress bar, ETA, message and error; cancel; refreshed while any is unfinished.
// URL: #/jobs?state=running

import { api, query } from "../api.js";
import { setState } from "../url.js";
import { fill, h, withStatus } from "../dom.js";
import { FINISHED, jobBlock } from "../jobs.js";

const STATES = ["", "queued", "running", "succeeded", "failed", "cancelled"];
const REFRESH_MS = 1000;

export async function render(root, route) {
  let state = route.params.get("state") || "";
  const status = h("div");
  const list = h("div", { class: "jobs", id: "job-list" });
  const select = h("select", { "aria-label": "state" }, STATES.map((s) => h("option", { value: s, selected: s === state }, s || "all states")));
  fill(root, h("div", { class: "title-row" }, h("h1", {}, "Jobs"), h("label", {}, "show ", select)), status, list);
  let timer = null;
  let stopped = false;

  async function refresh() {
    clearTimeout(timer);
    const jobs = await withStatus(status, "Loading jobs", () => api(`/api/jobs${query({ state, limit: 100 })}`));
    if (stopped) return;
    if (jobs) {
      fill(list, jobs.length ? jobs.map((j) => jobBlock(j, { onChange: refresh })) : h("p", { class: "muted" }, "No jobs."));
      // Fast while something runs; slowly otherwise, so jobs queued elsewhere still appear.
      timer = setTimeout(refresh, jobs.some((j) => !FINISHED.has(j.state)) ? REFRESH_MS : 5 * REFRESH_MS);
    }
  }
  select.addEventListener("change", () => {
    state = select.value;
    setState({ state });
    refresh();
  });
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
