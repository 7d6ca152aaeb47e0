// URL state: every view is `#/<page>/<id>?<state>`, so a view can be shared and reloaded as it is. The pages
// and the router both use these; they live here (not in app.js) so that no page imports the router.

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
