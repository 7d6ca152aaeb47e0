// The models one atlas holds side by side (GET /api/atlas/models: counts, head grid, family, embedders), read
// once per page load, and the model the pages show: the one the URL chose (`model=`, see url.js), else the
// served one. The switcher in the header and the atlas page's model table switch with `switchModel`.

import { api } from "./api.js";
import { h } from "./dom.js";
import { chosenModel, navigate, parseHash } from "./url.js";

let listing = null;

/** The atlas's models, the served one first (cached; `fresh: true` asks again: a build may have added one). */
export function atlasModels({ fresh = false } = {}) {
  if (listing === null || fresh) {
    const request = api("/api/atlas/models");
    request.catch(() => {
      if (listing === request) listing = null;
    });
    listing = request;
  }
  return listing;
}

/** The served model's name (null when the list cannot be read). */
export async function servedModel() {
  try {
    return (await atlasModels()).find((m) => m.served)?.name ?? null;
  } catch {
    return null;
  }
}

/** Whether `name` is the served model (true when that cannot be told: nothing is hidden on a guess). */
export async function isServed(name) {
  const served = await servedModel();
  return served === null || name === served;
}

// Pages about one thing of one model (an inference, a predictor, a pattern) have no counterpart in another
// model: a switch there goes to the page that lists such things.
const PARENT = { inference: "", intervene: "", predictor: "", pattern: "map" };

/** The route that shows the current page for `model` (an entry of atlasModels()). */
export function routeFor(model) {
  const { parts, params } = parseHash();
  const page = parts[0] || "";
  const state = Object.fromEntries([...params.entries()].filter(([key]) => key !== "offset"));
  let target = parts;
  if (page in PARENT) {
    target = PARENT[page] ? [PARENT[page]] : [];
    for (const key of Object.keys(state)) delete state[key];
  } else if (page === "head") {
    // The same head where the other model's grid has it, else every head.
    const [layer, head] = (parts[1] || "").match(/^L(\d+)H(\d+)$/)?.slice(1).map(Number) ?? [Infinity, Infinity];
    if (!(layer < (model.n_layers ?? 0) && head < (model.n_heads ?? 0))) target = ["heads"];
  }
  state.model = model.served ? "" : model.name; // the served model is the default: no `model=`
  return { parts: target, params: state };
}

/** Show `model` (an entry of atlasModels()) on the page the user is on, or the nearest page that has it. */
export function switchModel(model) {
  const { parts, params } = routeFor(model);
  navigate(parts, params);
}

/** A link that switches to `model` as switchModel does. For the served model it says `model=` (empty): a
 * link naming no model would keep the chosen one (see url.js keepModel). */
export function modelHref(model) {
  const { parts, params } = routeFor(model);
  const search = new URLSearchParams(Object.entries(params).filter(([key, value]) => key !== "model" && value !== ""));
  search.set("model", params.model);
  return `#/${parts.map(encodeURIComponent).join("/")}?${search}`;
}

/**
 * For a page that runs the served model (pasted code, ablations): when the URL chose another model, a
 * notice that this page uses the served one, with a way back to it; null otherwise. `what` says what the
 * served model does here.
 */
export async function servedOnlyNotice(what) {
  const chosen = chosenModel();
  if (!chosen) return null;
  let models;
  try {
    models = await atlasModels();
  } catch {
    return null;
  }
  const served = models.find((m) => m.served);
  if (!served || served.name === chosen) return null;
  const back = h("a", { href: modelHref(served), id: "served-model-link" }, `show ${served.name} everywhere`);
  return h("div", { class: "notice served-only", id: "served-model-notice", role: "note" },
    h("strong", {}, `This page uses the served model ${served.name}`), `: ${what}. `,
    `The model chosen in the header, ${chosen}, is not used here (`, back, ").");
}
