// #/pattern/<id>: resolve a head pattern id (from the map or a cluster medoid) to its inference's gallery.

import { api } from "../api.js";
import { fill, h, withStatus } from "../dom.js";
import { keepModel } from "../url.js";

export async function render(root, route) {
  const id = Number(route.parts[1]);
  const status = h("div");
  const about = h("p", { class: "muted", id: "pattern-head" });
  fill(root, h("h1", {}, `Pattern ${id}`), about, status);
  // The stored thumbnail (a database read, no model call) names the head at once, so its page stays in reach
  // while the model recomputes the pattern, or when it cannot.
  api(`/api/patterns/${id}/thumbnail`).then((t) => fill(about, `head ${t.name} of inference #${t.inference_id} · `,
    h("a", { class: "head-page-link", href: `#/head/${t.name}` }, "what this head does"), " · ",
    h("a", { class: "inference-link", href: `#/inference/${t.inference_id}?head=${t.name}` }, "its inference's gallery")), () => {});
  const pattern = await withStatus(status, "Finding the pattern's inference (the model recomputes it)", (onWait) => api(`/api/patterns/${id}`, { onWait }));
  if (pattern) location.replace(keepModel(`#/inference/${pattern.inference_id}?head=${pattern.name}`));
}
