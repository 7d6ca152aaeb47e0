// The router: every view is `#/<page>/<id>?<state>`, so a view can be shared and reloaded as it is.

import { api } from "./api.js";
import { errorBox, fill, h } from "./dom.js";
import * as overview from "./pages/overview.js";
import * as inference from "./pages/inference.js";
import * as intervene from "./pages/intervene.js";
import * as paste from "./pages/paste.js";
import * as map from "./pages/map.js";
import * as jobs from "./pages/jobs.js";
import * as pattern from "./pages/pattern.js";

const PAGES = { "": overview, inference, intervene, paste, map, jobs, pattern };

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [path, search = ""] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
}

function hashOf(parts, params) {
  const search = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString();
  return `#/${parts.map(encodeURIComponent).join("/")}${search ? `?${search}` : ""}`;
}

/** Go to another view (re-renders). */
export function navigate(parts, params = {}) {
  location.hash = hashOf(parts, params);
}

/** Record in-page state in the URL without re-rendering (push: a new history entry, for Back). */
export function setState(params, { push = false } = {}) {
  const { parts, params: current } = parseHash();
  const merged = Object.fromEntries(current.entries());
  Object.assign(merged, params);
  const next = hashOf(parts, merged);
  if (next === location.hash) return;
  if (push) history.pushState(null, "", next);
  else history.replaceState(null, "", next);
}

let cleanup = null;
let renderCount = 0;

async function render() {
  const route = parseHash();
  const name = route.parts[0] || "";
  const page = PAGES[name];
  const root = document.getElementById("page");
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === (name === "inference" || name === "intervene" ? "" : name)));
  const mine = ++renderCount;
  root.dataset.page = name || "overview";
  root.dataset.ready = "false";
  if (!page) {
    fill(root, h("div", { class: "error" }, `No page "${name}". `, h("a", { href: "#/" }, "Back to the atlas.")));
    return;
  }
  try {
    cleanup = await page.render(root, route);
  } catch (err) {
    console.warn(err);
    fill(root, errorBox(err));
  }
  if (mine === renderCount) root.dataset.ready = "true";
}

async function showWorker() {
  const slot = document.getElementById("worker-status");
  try {
    const health = await api("/api/health");
    const w = health.worker;
    const shape = w.model ? ` · ${w.model.n_layers}×${w.model.n_heads} heads` : "";
    slot.textContent = `${w.model_name ?? "no model"} · ${w.state}${shape}`;
    slot.className = `worker-status state-${w.state}`;
    if (w.state === "loading" || w.state === "starting") setTimeout(showWorker, 2000);
  } catch (err) {
    slot.textContent = err.message;
    slot.className = "worker-status state-error";
  }
}

window.addEventListener("hashchange", render);
showWorker();
render();
