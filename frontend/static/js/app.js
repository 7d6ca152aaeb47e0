// The router: renders the page named by the URL (`#/<page>/<id>?<state>`, see url.js) on every hash change,
// and the header's model switcher (the URL's `model=`). It imports the pages; nothing imports it (it is the
// entry point of index.html).

import { api } from "./api.js";
import { errorBox, fill, h, int } from "./dom.js";
import { atlasModels, modelHref, switchModel } from "./models.js";
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
import * as compare from "./pages/compare.js";
import { chosenModel, keepModel, parseHash, setState } from "./url.js";

const PAGES = { "": overview, inference, intervene, paste, map, jobs, pattern, predictor, findings, head, heads, families, anomalies, compare };
// The nav link a page lights up: pages reached from another page's link highlight that page's entry.
const NAV_OF = { inference: "", intervene: "", predictor: "", head: "heads", compare: "heads" };

let cleanup = null;
let renderCount = 0;

async function render() {
  // `model=` with no name (a link back to the served model) is the served model: the address drops it.
  if (parseHash().params.get("model") === "") setState({ model: "" });
  const route = parseHash();
  const name = route.parts[0] || "";
  const page = PAGES[name];
  const root = document.getElementById("page");
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === (NAV_OF[name] ?? name)));
  navLinks();
  syncModels();
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

// Links between pages keep the model the URL chose: a link's target is completed as it is followed (a click, a
// middle click, the context menu's "copy link"), so the pages' plain `#/...` links need not know the model.
function carryModel(event) {
  const link = event.target instanceof Element ? event.target.closest("a[href^='#/']") : null;
  if (link) link.setAttribute("href", keepModel(link.getAttribute("href")));
}

/** The header's links name the chosen model, so that what a hover shows is where they go. */
function navLinks() {
  document.querySelectorAll(".topbar a[href^='#/']").forEach((a) => {
    a.dataset.href ??= a.getAttribute("href");
    a.setAttribute("href", keepModel(a.dataset.href));
  });
}

let models = null; // GET /api/atlas/models, once read

const describe = (m) => `${int(m.inferences)} completions · ${int(m.head_patterns)} head patterns · ${m.n_layers ?? "?"} × ${m.n_heads ?? "?"} heads${m.family ? ` · family ${m.family}` : ""}${m.served ? " · the model the server holds" : ""}`;

/** The switcher in the header: the atlas's models, the served one marked; choosing one puts it in the URL. */
async function showModels() {
  try {
    models = await atlasModels();
  } catch (err) {
    console.warn("no model switcher:", err.message); // an older server, or a token still to give
    return;
  }
  const select = document.getElementById("model-switcher");
  select.addEventListener("change", () => {
    const model = models.find((m) => m.name === select.value);
    if (model) switchModel(model);
  });
  document.getElementById("model-switcher-label").hidden = false;
  syncModels();
}

/** Show the URL's model in the switcher; a model the atlas does not hold is listed as such, with a notice. */
function syncModels() {
  if (!models) return;
  const select = document.getElementById("model-switcher");
  const served = models.find((m) => m.served);
  const chosen = chosenModel() ?? served.name;
  const known = models.some((m) => m.name === chosen);
  fill(select, models.map((m) => h("option", { value: m.name, title: describe(m) }, m.served ? `${m.name} (served)` : m.name)),
    known ? null : h("option", { value: chosen, disabled: true }, `${chosen} (not in this atlas)`));
  select.value = chosen;
  // One model and nothing else asked for: nothing to switch to, but the switcher still names the model.
  select.disabled = models.length === 1 && known;
  select.title = models.length === 1 && known ? `The atlas holds one model: ${describe(served)}` : "The model whose part of the atlas the pages show";
  const notice = document.getElementById("model-notice");
  notice.hidden = known;
  fill(notice, known ? null : [`The atlas holds no completions of model ${chosen}, which this page's address names, so the pages have nothing of it to show. `,
    h("a", { href: modelHref(served) }, `Show the served model ${served.name}`), ` or pick one of the atlas's ${models.length} in the header.`]);
}

for (const type of ["click", "auxclick", "contextmenu"]) document.addEventListener(type, carryModel, true);
window.addEventListener("hashchange", render);
showWorker();
showModels();
render();
