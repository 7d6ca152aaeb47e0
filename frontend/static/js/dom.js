// Small DOM helpers shared by the pages: element builder, formatting, loading and error states.

import { download, saveToken, storedToken, withModel } from "./api.js";

/** h("div", {class: "x", onclick: f}, child, "text") -> element. Strings become text nodes (never HTML). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const pct = (x, digits = 1) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(digits)}%`);
export const num = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
export const int = (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en-US"));

/** A cluster label as the API sends it (HeadCell, NeighborHit, top heads): -1 is HDBSCAN's noise, null none. */
export const clusterText = (label) => (label === null || label === undefined ? "no cluster" : label === -1 ? "cluster: noise" : `cluster ${label}`);

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A correctness flag as a word with a mark, so it does not rely on colour alone. */
export function verdict(flag) {
  if (flag === null || flag === undefined) return h("span", { class: "verdict unknown" }, "unknown");
  return flag ? h("span", { class: "verdict right" }, "✓ correct") : h("span", { class: "verdict wrong" }, "✗ wrong");
}

export function loading(text) {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner" }), text);
}

export function errorBox(err) {
  if (err.code === "unauthorized") return tokenForm();
  const lines = (err.errors || []).map((e) => (typeof e === "string" ? e : `${(e.loc || []).join(".")}: ${e.msg || JSON.stringify(e)}`));
  return h("div", { class: "error", role: "alert" }, h("strong", {}, "Error: "), err.message || String(err), lines.length ? h("ul", {}, lines.map((l) => h("li", {}, l))) : null);
}

/** The server wants a token (ATTNLENS_API__TOKEN): ask for it, keep it in this browser, and load the page again. */
export function tokenForm() {
  const input = h("input", { type: "password", id: "api-token", autocomplete: "current-password", placeholder: "token", size: 40 });
  const save = (event) => {
    event.preventDefault();
    saveToken(input.value.trim());
    location.reload();
  };
  return h("form", { class: "notice token-form", role: "alert", id: "token-form", onsubmit: save },
    h("strong", {}, storedToken() ? "The token this browser holds was refused. " : "This server needs a token. "),
    "Enter the server's token (its ATTNLENS_API__TOKEN; ask whoever runs it). It is kept in this browser only and sent with every request.",
    h("div", {}, input, " ", h("button", { type: "submit" }, "Use this token")));
}

export function notAvailable(what) {
  return h("div", { class: "notice unavailable" }, `${what} is not available yet on this server (the endpoint is missing).`);
}

/** Replace `target`'s content with `nodes`. */
export function fill(target, ...nodes) {
  target.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  return target;
}

/**
 * Run `task` with a visible waiting line in `slot` (updated with what a slow call waits for); errors are shown
 * in `slot` and re-thrown as null results so the page can carry on.
 */
export async function withStatus(slot, text, task) {
  fill(slot, loading(text));
  try {
    const result = await task((waiting) => fill(slot, loading(waiting ? `${text} (${waiting})` : text)));
    fill(slot);
    return result;
  } catch (err) {
    if (err.name === "AbortError") return null;
    fill(slot, errorBox(err));
    return null;
  }
}

/** Tokens are shown with visible whitespace so that " x" and "x" differ on screen. */
export const showToken = (t) => t.replace(/\n/g, "↵").replace(/\t/g, "→").replace(/ /g, "·");

// A plain link, unless this browser holds a token: a link cannot send the Authorization header, so the click
// fetches the file with it instead.
export function downloadLink(href, filename, id, text) {
  const onclick = (event) => {
    if (!storedToken()) return;
    event.preventDefault();
    download(href, filename).catch((err) => event.target.replaceWith(errorBox(err)));
  };
  return h("a", { class: "button", href: withModel(href), download: filename, id, onclick }, text);
}

/** Scroll `element` into view if any of its top part is off-screen: what a click made must be seen. */
export function bringIntoView(element) {
  const box = element.getBoundingClientRect();
  if (box.top < 0 || box.top + Math.min(box.height, 120) > window.innerHeight) element.scrollIntoView({ block: "start" });
}
