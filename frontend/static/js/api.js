// The JSON API: one fetch wrapper that turns the server's error shape into ApiError, and retries a busy
// model (503 + Retry-After) while telling the page what it is waiting for.

import { chosenModel } from "./url.js";

export class ApiError extends Error {
  constructor(status, code, message, errors = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.errors = errors;
  }
  // An endpoint the server does not have yet (older backend): pages show "not available yet".
  get missingEndpoint() {
    return (this.status === 404 || this.status === 405) && this.message === (this.status === 404 ? "Not Found" : "Method Not Allowed");
  }
}

const MAX_BUSY_RETRIES = 8;
const TOKEN_KEY = "attnlens.token";

// A server that listens beyond loopback requires a bearer token (ATTNLENS_API__TOKEN); the pages ask for it
// once (see dom.js `errorBox`) and keep it in this browser's local storage, never in the URL.
export const storedToken = () => localStorage.getItem(TOKEN_KEY);
export function saveToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}
const authHeaders = () => (storedToken() ? { Authorization: `Bearer ${storedToken()}` } : {});

/** Fetch a file the API serves (a report download) with the token, and hand it to the browser as a download. */
export async function download(path, filename) {
  const response = await fetch(withModel(path), { headers: authHeaders() });
  if (!response.ok) throw await errorOf(response);
  saveBlob(await response.blob(), filename);
}

/** Hand `blob` to the browser as a download named `filename`. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's HTML page): fall back to the status line below.
  }
  if (body && body.ok === false) return new ApiError(body.status, body.code, body.error, body.errors || []);
  const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
  return new ApiError(response.status, "http_error", detail || `HTTP ${response.status}`);
}

/**
 * `path` (an /api/ URL) for the model the header's switcher chose (the URL's `model=`), unless it names a
 * model itself: the one place every page's reads learn it. Endpoints without a `model` ignore it; with no
 * choice the server's default, the served model, holds.
 */
export function withModel(path, model = chosenModel()) {
  if (!model || !path.startsWith("/api/") || new URLSearchParams(path.split("?")[1] || "").has("model")) return path;
  return `${path}${path.includes("?") ? "&" : "?"}model=${encodeURIComponent(model)}`;
}

/**
 * Call the API. Reads (GET) are for the chosen model (see `withModel`); writes say what they are about in
 * their body. `onWait(text)` is told what a slow call is waiting for ("model busy, retrying in 2 s");
 * it is called with null when the wait is over.
 */
export async function api(path, { method = "GET", body, onWait, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/json", ...authHeaders() } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(method === "GET" ? withModel(path) : path, init);
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "network", "The server did not answer: is `attnlens serve` running?");
    }
    if (response.status === 503 && attempt < MAX_BUSY_RETRIES) {
      const seconds = Math.max(1, Number(response.headers.get("Retry-After")) || 1);
      for (let left = seconds; left > 0; left--) {
        onWait?.(`model busy, retrying in ${left} s`);
        await sleep(1000);
      }
      continue;
    }
    onWait?.(null);
    if (!response.ok) throw await errorOf(response);
    return response.status === 204 ? null : response.json(); // 204: done, nothing to say (a delete)
  }
}

export const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
};

let taskList = null;
let taskListModel = null;

/**
 * The tasks (GET /api/tasks: name, description, at_cursor, auto_holes, control, and the chosen model's
 * counts), fetched once per page load and model: the server holds the one task list, so no page keeps a
 * copy. A failed fetch is not cached, so the next page can try again. Pages that show the counts after the
 * atlas has changed ask for a fresh copy with `fresh: true`.
 */
export function tasks({ fresh = false } = {}) {
  if (taskList === null || fresh || taskListModel !== chosenModel()) {
    const request = api("/api/tasks");
    request.catch(() => {
      if (taskList === request) taskList = null;
    });
    taskList = request;
    taskListModel = chosenModel();
  }
  return taskList;
}

let openapiPaths = null;

/** Whether the server has an endpoint (read once from the OpenAPI document), e.g. has("/api/analyze", "post"). */
export async function has(path, method = "get") {
  if (openapiPaths === null) {
    try {
      openapiPaths = (await api("/api/openapi.json")).paths || {};
    } catch {
      openapiPaths = {};
    }
  }
  return Boolean(openapiPaths[path] && openapiPaths[path][method]);
}

/** Decode a base64 payload of uint8 values (the packed head thumbnails). */
export function decodeBytes(b64) {
  const text = atob(b64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
