// #/pattern/<id>: resolve a head pattern id (from the map or a cluster medoid) to its inference's gallery.

import { api } from "../api.js";
import { fill, h, withStatus } from "../dom.js";

export async function render(root, route) {
  const id = Number(route.parts[1]);
  const status = h("div");
  fill(root, h("h1", {}, `Pattern ${id}`), status);
  const pattern = await withStatus(status, "Finding the pattern's inference (the model recomputes it)", (onWait) => api(`/api/patterns/${id}`, { onWait }));
  if (pattern) location.replace(`#/inference/${pattern.inference_id}?head=${pattern.name}`);
}
