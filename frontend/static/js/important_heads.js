// The heads that matter for predicting each task's correctness (GET /api/predictors/heads): read by the atlas
// overview's "heads that matter" card and by the head page's "where this head matters", so that both name a
// predictor and a head's importance the same way.

import { api } from "./api.js";
import { pct } from "./dom.js";

/** Per task, its most accurate head-ranking predictor with its `top` heads by mean |SHAP|, most important
 * first; empty before any predictor is trained. */
export const importantHeads = (top) => api(`/api/predictors/heads?top=${top}`);

/** A signed mean SHAP (log-odds of a correct completion). */
export const signedShap = (x) => `${x >= 0 ? "+" : ""}${x.toFixed(3)}`;

/** "kind: accuracy [95% CI]" of a row of GET /api/predictors/heads. */
export const predictorAccuracy = (r) => `${r.kind}: ${pct(r.accuracy)} [${pct(r.accuracy_low)}, ${pct(r.accuracy_high)}]`;
