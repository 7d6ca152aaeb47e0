// Colour-blind safe colours: Viridis for intensities, Okabe-Ito for categories and marks.

const VIRIDIS_STOPS = [
  [0x44, 0x01, 0x54], [0x48, 0x28, 0x78], [0x3e, 0x49, 0x89], [0x31, 0x68, 0x8e], [0x26, 0x82, 0x8e],
  [0x1f, 0x9e, 0x89], [0x35, 0xb7, 0x79], [0x6e, 0xce, 0x58], [0xfd, 0xe7, 0x25],
];

/** 256 x RGB lookup table (Uint8Array of 768) interpolated from Viridis stops. */
export const VIRIDIS_LUT = (() => {
  const lut = new Uint8Array(256 * 3);
  const last = VIRIDIS_STOPS.length - 1;
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * last;
    const lo = Math.min(Math.floor(t), last - 1);
    const f = t - lo;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(VIRIDIS_STOPS[lo][c] * (1 - f) + VIRIDIS_STOPS[lo + 1][c] * f);
  }
  return lut;
})();

// Okabe-Ito: distinguishable under the common colour-vision deficiencies.
export const CATEGORICAL = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
export const MARK = { selected: "#0072B2", focus: "#000000", ablated: "#D55E00", top: "#E69F00" };

/** Paint `size`x`size` uint8 values at `offset` of `bytes` into `image` (an ImageData) at (x0, y0). */
export function paintThumbnail(image, bytes, offset, size, x0, y0) {
  const { data, width } = image;
  for (let r = 0; r < size; r++) {
    let p = ((y0 + r) * width + x0) * 4;
    let q = offset + r * size;
    for (let c = 0; c < size; c++, p += 4, q++) {
      const v = bytes[q] * 3;
      data[p] = VIRIDIS_LUT[v];
      data[p + 1] = VIRIDIS_LUT[v + 1];
      data[p + 2] = VIRIDIS_LUT[v + 2];
      data[p + 3] = 255;
    }
  }
}

/** A small canvas showing one thumbnail, scaled up with CSS (pixelated). */
export function thumbnailCanvas(bytes, size, offset = 0, cssSize = 64) {
  const canvas = document.createElement("canvas");
  canvas.width = size;
  canvas.height = size;
  canvas.className = "thumb";
  canvas.style.width = canvas.style.height = `${cssSize}px`;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(size, size);
  paintThumbnail(image, bytes, offset, size, 0, 0);
  ctx.putImageData(image, 0, 0);
  return canvas;
}
