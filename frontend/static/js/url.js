// URL state: every view is `#/<page>/<id>?<state>`, so a view can be shared and reloaded as it is. The pages
// and the router both use these; they live here (not in app.js) so that no page imports the router. The model
// the pages show is URL state too (`model=`, absent: the served one), kept across pages (see keepModel).

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [path, search = ""] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
}

function hashOf(parts, params) {
  const search = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString();
  return `#/${parts.map(encodeURIComponent).join("/")}${search ? `?${search}` : ""}`;
}

/** The model the URL chose (`model=`, set by the switcher in the header), or null: the served one. */
export function chosenModel(hash = location.hash) {
  return parseHash(hash).params.get("model") || null;
}

/** A `#/...` link that keeps the chosen model, unless it names a model itself (`model=`, empty: the served
 * one): links between pages carry the switcher's choice. */
export function keepModel(href, model = chosenModel()) {
  if (!model || !href.startsWith("#/") || parseHash(href).params.has("model")) return href;
  return `${href}${href.includes("?") ? "&" : "?"}model=${encodeURIComponent(model)}`;
}

/** Go to another view (re-renders), keeping the chosen model unless `params` names one ("": the served). */
export function navigate(parts, params = {}) {
  location.hash = hashOf(parts, "model" in params ? params : { ...params, model: chosenModel() });
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
