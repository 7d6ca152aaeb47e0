// The router: renders the page named by the URL (`#/<page>/<id>?<state>`, see url.js) on every hash change.
// It imports the pages; nothing imports it (it is the entry point of index.html).

import { api } from "./api.js";
import { errorBox, fill, h } from "./dom.js";
import * as overview from "./pages/overview.js";
import * as inference from "./pages/inference.js";
import * as intervene from "./pages/intervene.js";
import * as paste from "./pages/paste.js";
import * as map from "./pages/map.js";
import * as jobs from "./pages/jobs.js";
import * as pattern from "./pages/pattern.js";
import * as predictor from "./pages/predictor.js";
import * as findings from "./pages/findings.js";
import * as head from "./pages/head.js";
import * as heads from "./pages/heads.js";
import * as families from "./pages/families.js";
import * as anomalies from "./pages/anomalies.js";
import { parseHash } from "./url.js";

const PAGES = { "": overview, inference, intervene, paste, map, jobs, pattern, predictor, findings, head, heads, families, anomalies };
// The nav link a page lights up: pages reached from another page's link highlight that page's entry.
const NAV_OF = { inference: "", intervene: "", predictor: "", head: "heads" };

let cleanup = null;
let renderCount = 0;

async function render() {
  const route = parseHash();
  const name = route.parts[0] || "";
  const page = PAGES[name];
  const root = document.getElementById("page");
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === (NAV_OF[name] ?? name)));
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
    // What the weights are (the embedded SmolLM2 is a dequantised 4-bit GGUF, and says so).
    const weights = w.model?.weights ? ` (${w.model.weights})` : "";
    slot.textContent = `${w.model_name ?? "no model"}${weights} · ${w.state}${shape}`;
    slot.title = `The model the server holds${w.model?.weights ? `; weights: ${w.model.weights}` : ""}`;
    slot.className = `worker-status state-${w.state}`;
    if (w.state === "loading" || w.state === "starting") setTimeout(showWorker, 2000);
  } catch (err) {
    slot.textContent = err.code === "unauthorized" ? "token needed" : err.message;
    slot.className = "worker-status state-error";
  }
}

window.addEventListener("hashchange", render);
showWorker();
render();
