// The layer x head grid of pattern thumbnails on one canvas. All thumbnails are painted once into an
// offscreen image with putImageData (from the one packed payload), then blitted per cell: this stays fast at
// 40 x 48 = 1,920 heads, where 1,920 <img> elements would not.

import { decodeBytes } from "./api.js";
import { MARK, paintThumbnail } from "./colors.js";
import { clusterText, fill, h, num, pct } from "./dom.js";

const LABEL_W = 34; // room for "L39" at the left
const LABEL_H = 16; // room for "H47" on top
const MIN_CELL = 6;
const MAX_CELL = 64;

export class HeadGrid {
  /**
   * grid: the API's HeadGridPublic. options: onActivate(cell) (click / Enter), onLayer(layer) (click on a
   * layer label), describe(cell) -> extra tooltip lines, label (aria label).
   */
  constructor(grid, { onActivate, onLayer, describe, label = "Attention heads" } = {}) {
    this.grid = grid;
    this.nLayers = grid.n_layers;
    this.nHeads = grid.n_heads;
    this.size = grid.thumbnail_size;
    this.cells = new Array(this.nLayers * this.nHeads).fill(null);
    for (const cell of grid.heads) this.cells[cell.layer * this.nHeads + cell.head] = cell;
    this.byName = new Map(grid.heads.map((c) => [c.name, c]));
    this.onActivate = onActivate;
    this.onLayer = onLayer;
    this.describe = describe;
    this.selected = null;
    this.ablated = new Set();
    this.top = new Set();
    this.heat = null; // name -> value in [-1, 1] (a sweep's effect), drawn over the thumbnails
    this.unusual = false; // frame each head by how unusual its pattern is for the head (HeadCell.error_percentile)
    this.focus = { layer: 0, head: 0 };

    this.source = this.#paintSource(decodeBytes(grid.thumbnails));
    this.canvas = h("canvas", { class: "grid-canvas", tabindex: "0", role: "application", "aria-label": `${label}: arrow keys move, Enter picks` });
    this.tooltip = h("div", { class: "tooltip", hidden: true });
    this.live = h("div", { class: "sr-only", "aria-live": "polite" });
    // The tooltip follows the pointer and takes no clicks, so the link to what a head does sits under the
    // grid, for the head last picked (clicked or keyed to).
    this.headLink = h("a", { class: "head-page-link", hidden: true });
    this.picked = false;
    this.element = h("div", { class: "grid-wrap" }, this.canvas, this.tooltip, this.live, this.headLink);
    this.canvas.addEventListener("mousemove", (e) => this.#hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tooltip.hidden = true));
    this.canvas.addEventListener("click", (e) => this.#click(e));
    this.canvas.addEventListener("keydown", (e) => this.#key(e));
    this.canvas.addEventListener("focus", () => this.draw());
    this.canvas.addEventListener("blur", () => { this.tooltip.hidden = true; this.draw(); });
    // The tooltip is fixed to the window: once the page (or a box around the grid) scrolls, it no longer
    // sits by its cell.
    this.hideTooltip = () => (this.tooltip.hidden = true);
    window.addEventListener("scroll", this.hideTooltip, { capture: true, passive: true });
    this.resizeObserver = new ResizeObserver(() => this.layout());
    this.resizeObserver.observe(this.element);
  }

  #paintSource(bytes) {
    const { nLayers, nHeads, size } = this;
    const source = document.createElement("canvas");
    source.width = nHeads * size;
    source.height = nLayers * size;
    const ctx = source.getContext("2d");
    const image = ctx.createImageData(source.width, source.height);
    for (let l = 0; l < nLayers; l++)
      for (let hd = 0; hd < nHeads; hd++) paintThumbnail(image, bytes, (l * nHeads + hd) * size * size, size, hd * size, l * size);
    ctx.putImageData(image, 0, 0);
    return source;
  }

  layout() {
    const width = this.element.clientWidth || 600;
    this.cell = Math.max(MIN_CELL, Math.min(MAX_CELL, Math.floor((width - LABEL_W) / this.nHeads)));
    this.gap = this.cell >= 12 ? 2 : this.cell >= 8 ? 1 : 0;
    const cssW = LABEL_W + this.nHeads * this.cell;
    const cssH = LABEL_H + this.nLayers * this.cell;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(cssW * ratio);
    this.canvas.height = Math.round(cssH * ratio);
    this.canvas.style.width = `${cssW}px`;
    this.canvas.style.height = `${cssH}px`;
    this.ratio = ratio;
    // Where cells are, for tests and for anyone scripting the page.
    Object.assign(this.canvas.dataset, { cell: this.cell, left: LABEL_W, top: LABEL_H });
    this.draw();
  }

  draw() {
    if (!this.cell) return;
    const { cell, gap, size, nLayers, nHeads } = this;
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.imageSmoothingEnabled = cell < size;
    ctx.fillStyle = "#555";
    ctx.font = "10px ui-monospace, monospace";
    ctx.textBaseline = "middle";
    const layerStep = Math.ceil(12 / cell); // keep labels legible when cells are tiny
    ctx.textAlign = "right";
    for (let l = 0; l < nLayers; l += layerStep) ctx.fillText(`L${l}`, LABEL_W - 4, LABEL_H + l * cell + cell / 2);
    ctx.textAlign = "center";
    const headStep = Math.ceil(22 / cell);
    for (let hd = 0; hd < nHeads; hd += headStep) ctx.fillText(`H${hd}`, LABEL_W + hd * cell + cell / 2, LABEL_H / 2);
    for (let l = 0; l < nLayers; l++) {
      for (let hd = 0; hd < nHeads; hd++) {
        const x = LABEL_W + hd * cell;
        const y = LABEL_H + l * cell;
        if (!this.cells[l * nHeads + hd]) {
          ctx.fillStyle = "#ddd";
          ctx.fillRect(x, y, cell - gap, cell - gap);
          continue;
        }
        ctx.drawImage(this.source, hd * size, l * size, size, size, x, y, cell - gap, cell - gap);
      }
    }
    if (this.heat) for (const [name, value] of this.heat) this.#shade(name, value);
    if (this.unusual) for (const c of this.grid.heads) this.#frameUnusual(c);
    for (const name of this.ablated) this.#mark(name, "ablated");
    for (const name of this.top) this.#mark(name, "top");
    if (this.selected) this.#mark(this.selected, "selected");
    if (document.activeElement === this.canvas) this.#outline(this.focus.layer, this.focus.head, MARK.focus, 1, [3, 2]);
    this.#linkHead();
  }

  /** Point the link under the grid at the selected head, else at the one last clicked or keyed to. */
  #linkHead() {
    const cell = this.selected ? this.byName.get(this.selected) : this.picked ? this.cells[this.focus.layer * this.nHeads + this.focus.head] : null;
    this.headLink.hidden = !cell;
    if (!cell || this.headLink.dataset.head === cell.name) return;
    this.headLink.dataset.head = cell.name;
    this.headLink.href = `#/head/${cell.name}`;
    this.headLink.textContent = `${cell.name}: what this head does →`;
  }

  #mark(name, kind) {
    const c = this.byName.get(name);
    if (!c) return;
    const ctx = this.canvas.getContext("2d");
    const { cell, gap } = this;
    const x = LABEL_W + c.head * cell;
    const y = LABEL_H + c.layer * cell;
    if (kind === "ablated") {
      // Dimmed with a cross: readable without relying on hue.
      ctx.fillStyle = "rgba(255,255,255,0.55)";
      ctx.fillRect(x, y, cell - gap, cell - gap);
      ctx.strokeStyle = MARK.ablated;
      ctx.lineWidth = Math.max(1.5, cell / 12);
      ctx.beginPath();
      ctx.moveTo(x + 2, y + 2);
      ctx.lineTo(x + cell - gap - 2, y + cell - gap - 2);
      ctx.moveTo(x + cell - gap - 2, y + 2);
      ctx.lineTo(x + 2, y + cell - gap - 2);
      ctx.stroke();
    } else if (kind === "top") {
      this.#outline(c.layer, c.head, MARK.top, Math.max(2, cell / 10), [2, 2]);
    } else {
      this.#outline(c.layer, c.head, "#fff", Math.max(3, cell / 8));
      this.#outline(c.layer, c.head, MARK.selected, Math.max(2, cell / 12));
    }
  }

  // Negative values (a head whose removal lowers p(expected)) in vermillion, positive in blue (Okabe-Ito, apart
  // under the common colour-vision deficiencies), their strength as opacity; zero leaves the thumbnail as is.
  #shade(name, value) {
    const c = this.byName.get(name);
    if (!c || !value) return;
    const ctx = this.canvas.getContext("2d");
    const { cell, gap } = this;
    const alpha = 0.2 + 0.7 * Math.min(1, Math.abs(value));
    ctx.fillStyle = value < 0 ? `rgba(213,94,0,${alpha})` : `rgba(0,114,178,${alpha})`;
    ctx.fillRect(LABEL_W + c.head * cell, LABEL_H + c.layer * cell, cell - gap, cell - gap);
  }

  // How unusual a head's pattern is for that head: a vermillion frame, none at or below the head's median error
  // (50th percentile), growing to full strength at its highest (100th); the tail (above 99th) gets a wider one.
  #frameUnusual(c) {
    const strength = unusualStrength(c.error_percentile);
    if (!strength) return;
    const width = c.error_percentile > UNUSUAL_TAIL ? Math.max(3, this.cell / 8) : Math.max(2, this.cell / 12);
    this.#outline(c.layer, c.head, `rgba(213,94,0,${strength.toFixed(3)})`, width);
  }

  #outline(layer, head, colour, width, dash = []) {
    const ctx = this.canvas.getContext("2d");
    const { cell, gap } = this;
    ctx.save();
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.setLineDash(dash);
    ctx.strokeRect(LABEL_W + head * cell + width / 2, LABEL_H + layer * cell + width / 2, cell - gap - width, cell - gap - width);
    ctx.restore();
  }

  #at(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left - LABEL_W;
    const y = event.clientY - rect.top - LABEL_H;
    const layer = Math.floor(y / this.cell);
    if (layer < 0 || layer >= this.nLayers) return null;
    if (x < 0) return { layer, head: null };
    const head = Math.floor(x / this.cell);
    if (head >= this.nHeads) return null;
    return { layer, head, cell: this.cells[layer * this.nHeads + head] };
  }

  /** Show `cell`'s tooltip by the window point (x, y). It is position: fixed so that the grid's scroll box
   * (overflow-x) cannot clip it at the bottom rows; it flips above / left of the point near the window's edge. */
  #tooltipFor(cell, x, y) {
    const extra = this.describe ? this.describe(cell) : [];
    // HeadCell.cluster: the head's cluster in the newest clustering (a pasted pattern: the one it joined by
    // kNN vote); null when no clustering covers the head, and then the line is left out. `fill` drops the
    // null (replaceChildren would show it as the text "null").
    fill(this.tooltip,
      h("strong", {}, cell.name),
      cell.cluster === undefined || cell.cluster === null ? null : h("div", { class: "cluster" }, clusterText(cell.cluster)),
      ...extra.map((line) => h("div", {}, line)),
      unusualLine(cell),
      h("div", { class: "stats" }, `entropy ${num(cell.entropy, 2)} · diagonal ${num(cell.diagonal_mass, 2)}`),
      h("div", { class: "stats" }, `previous ${num(cell.previous_token_mass, 2)} · first ${num(cell.first_token_mass, 2)} · local ${num(cell.local_mass, 2)}`),
      h("div", { class: "head-page-hint" }, "what this head does: pick it, then the link under the grid"),
    );
    this.tooltip.hidden = false;
    const { offsetWidth: width, offsetHeight: height } = this.tooltip;
    const left = x + 14 + width > window.innerWidth ? x - 14 - width : x + 14;
    const top = y + 14 + height > window.innerHeight ? y - 14 - height : y + 14;
    this.tooltip.style.left = `${Math.max(0, left)}px`;
    this.tooltip.style.top = `${Math.max(0, top)}px`;
  }

  #hover(event) {
    const at = this.#at(event);
    if (!at || !at.cell) {
      this.tooltip.hidden = true;
      this.canvas.style.cursor = at && at.head === null && this.onLayer ? "pointer" : "default";
      return;
    }
    this.canvas.style.cursor = "pointer";
    this.#tooltipFor(at.cell, event.clientX, event.clientY);
  }

  #click(event) {
    const at = this.#at(event);
    if (!at) return;
    if (at.head === null) {
      this.onLayer?.(at.layer);
      return;
    }
    this.focus = { layer: at.layer, head: at.head };
    this.picked = true;
    if (at.cell) this.onActivate?.(at.cell);
    this.draw();
  }

  #key(event) {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1], PageUp: [-5, 0], PageDown: [5, 0] };
    const { layer, head } = this.focus;
    if (moves[event.key]) {
      const [dl, dh] = moves[event.key];
      this.focus = {
        layer: Math.max(0, Math.min(this.nLayers - 1, layer + dl)),
        head: Math.max(0, Math.min(this.nHeads - 1, head + dh)),
      };
    } else if (event.key === "Home") this.focus = { layer, head: 0 };
    else if (event.key === "End") this.focus = { layer, head: this.nHeads - 1 };
    else if (event.key === "Enter" || event.key === " ") {
      const cell = this.cells[layer * this.nHeads + head];
      if (cell) this.onActivate?.(cell);
    } else if (event.key === "Escape") {
      this.tooltip.hidden = true;
      return;
    } else return;
    event.preventDefault();
    this.picked = true;
    this.draw();
    const cell = this.cells[this.focus.layer * this.nHeads + this.focus.head];
    if (cell) {
      this.live.textContent = cell.name;
      const rect = this.canvas.getBoundingClientRect();
      this.#tooltipFor(cell, rect.left + LABEL_W + (this.focus.head + 1) * this.cell, rect.top + LABEL_H + (this.focus.layer + 1) * this.cell);
    }
  }

  setSelected(name) {
    this.selected = name;
    const c = this.byName.get(name);
    if (c) this.focus = { layer: c.layer, head: c.head };
    this.draw();
  }

  setAblated(names) {
    this.ablated = new Set(names);
    this.draw();
  }

  /** Shade cells by `values` (Map: head name -> value in [-1, 1]); null clears the overlay. */
  setHeat(values) {
    this.heat = values;
    this.canvas.dataset.heat = values ? [...values].filter(([, v]) => v).map(([n]) => n).join(",") : "";
    this.draw();
  }

  /** Frame every head by how unusual its pattern is for the head (on), or not (off). The canvas's
   * data-unusualness lists what is drawn, "name=percentile=strength" per head ("-" where unknown). */
  setUnusual(on) {
    this.unusual = Boolean(on);
    this.canvas.dataset.unusual = this.unusual ? "on" : "off";
    this.canvas.dataset.unusualness = this.unusual ? this.grid.heads.map((c) => {
      const p = c.error_percentile;
      return `${c.name}=${p === null || p === undefined ? "-" : p.toFixed(4)}=${unusualStrength(p).toFixed(3)}`;
    }).join(",") : "";
    this.draw();
  }

  setTop(names) {
    this.top = new Set(names);
    this.canvas.dataset.topHeads = [...this.top].join(","); // what is outlined, for tests and scripts
    this.draw();
  }

  destroy() {
    this.resizeObserver.disconnect();
    window.removeEventListener("scroll", this.hideTooltip, { capture: true });
  }
}

/** The legend for the marks drawn on a grid. */
export function gridLegend(kinds) {
  const labels = {
    selected: "selected head", top: "top heads (prediction)", ablated: "ablated", focus: "keyboard focus",
    unusual: "unusual for its head: the frame grows from none (at or below the head's median error) to full (its highest); wider in its tail (above its 99th percentile)",
  };
  return h("div", { class: "legend" }, kinds.map((k) => h("span", { class: `key key-${k}` }, labels[k])));
}

// The percentile above which a pattern is in its head's tail (the API's `tail`, 0.99): the wider frame.
const UNUSUAL_TAIL = 0.99;

/** The frame's opacity for a percentile within the head: 0 up to the median, then linear to 1 at the top. */
export function unusualStrength(percentile) {
  if (percentile === null || percentile === undefined) return 0;
  return Math.max(0, Math.min(1, (percentile - 0.5) / 0.5));
}

/** "93rd": a share in [0, 1] as an ordinal percentile. */
/** "about 1% by chance" from the server's `chance` share (exact for the atlas's patterns per head; it is
 * larger than 1 - tail when heads have few patterns), else 1 - tail. */
export function chanceText(chance, tail) {
  const expected = chance ?? 1 - tail;
  return `about ${pct(expected, expected < 0.1 ? 1 : 0)} expected by chance`;
}

export function ordinalPercentile(share) {
  const n = Math.round(100 * share);
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

// The tooltip's line on how unusual the head's pattern is (left out by a server that does not send it).
function unusualLine(cell) {
  if (cell.reconstruction_error === undefined) return null;
  if (cell.reconstruction_error === null) return h("div", { class: "unusualness" }, "unusualness: no reconstruction error measured");
  const error = `AP-MAE error ${Number(cell.reconstruction_error.toPrecision(4))}`;
  if (cell.error_percentile === null || cell.error_percentile === undefined)
    return h("div", { class: "unusualness" }, `${error} (no atlas errors of this head to compare with)`);
  return h("div", { class: "unusualness" }, `unusualness: ${ordinalPercentile(cell.error_percentile)} percentile of this head's atlas errors (${error})`);
}

/** The "colour by unusualness" switch for a grid: a checkbox that frames the heads, and a legend key when on. */
export function unusualToggle(grid, { checked = false, onChange } = {}) {
  const box = h("input", { type: "checkbox", id: "unusual-toggle", checked });
  const label = h("label", { class: "inline", title: "frame each head by the percentile of its pattern's AP-MAE reconstruction error among that head's patterns in the atlas" }, box, " colour by unusualness");
  box.addEventListener("change", () => {
    grid.setUnusual(box.checked);
    onChange?.(box.checked);
  });
  grid.setUnusual(checked);
  return label;
}
