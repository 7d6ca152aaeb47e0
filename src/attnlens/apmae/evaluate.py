"""Held-out evaluation of an AP-MAE checkpoint against two trivial baselines, and a reconstruction PNG.

All three predictors are scored on the same masked patches (one fixed random mask per image):
- the model;
- `mean_image`: the per-pixel mean of the training images (knows nothing about the pattern at hand);
- `mean_visible`: every masked pixel predicted as the mean pixel value of that image's visible patches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from attnlens.apmae.cache import PatternSet
from attnlens.apmae.model import APMAE


def _gather(patches: Tensor, ids: Tensor) -> Tensor:
    return patches.gather(1, ids.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))


@torch.no_grad()
def masked_errors(
    model: APMAE,
    images: Float[Tensor, "n s s"],
    mean_image: Float[Tensor, "s s"],
    *,
    batch_size: int = 512,
    seed: int = 1234,
) -> dict[str, Float[Tensor, " n"]]:
    """Per-image masked-patch MSE of the model and both baselines (same masks for all three)."""
    model.eval()
    device = model.lower_ids.device
    generator = torch.Generator().manual_seed(seed)
    mean_patches = model.patchify(mean_image[None].to(device).float())  # (1, patch, pixel)
    out: dict[str, list[Tensor]] = {"model": [], "mean_image": [], "mean_visible": []}
    for start in range(0, images.shape[0], batch_size):
        chunk = images[start : start + batch_size].to(device).float()
        visible, masked = model.random_masking(chunk.shape[0], generator)
        visible, masked = visible.to(device), masked.to(device)
        pred = model.forward_decoder(model.forward_encoder(chunk, visible), visible, masked).float()
        patches = model.patchify(chunk)
        target = _gather(patches, masked)
        seen_mean = _gather(patches, visible).mean(dim=(1, 2), keepdim=True)  # (batch, 1, 1)
        baseline_image = _gather(mean_patches.expand(chunk.shape[0], -1, -1), masked)
        out["model"].append(((pred - target) ** 2).mean(dim=(1, 2)).cpu())
        out["mean_image"].append(((baseline_image - target) ** 2).mean(dim=(1, 2)).cpu())
        out["mean_visible"].append(((seen_mean - target) ** 2).mean(dim=(1, 2)).cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def evaluate(
    model: APMAE, heldout: PatternSet, mean_image: Float[Tensor, "s s"], *, seed: int = 1234
) -> dict[str, object]:
    """Overall and per-layer masked-patch MSE for the model and the baselines on a held-out set."""
    errors = masked_errors(model, heldout.images, mean_image, seed=seed)
    layers = sorted(set(heldout.layer.tolist()))
    per_layer = {
        str(layer): {k: float(v[heldout.layer == layer].mean()) for k, v in errors.items()}
        for layer in layers
    }
    overall = {k: float(v.mean()) for k, v in errors.items()}
    return {
        "patterns": len(heldout),
        "inferences": len(set(heldout.window.tolist())),
        "files": len(set(heldout.files)),
        "decoder_mode": model.config.decoder_mode,
        "masked_patch_mse": overall,
        "ratio_to_mean_image": overall["model"] / overall["mean_image"],
        "ratio_to_mean_visible": overall["model"] / overall["mean_visible"],
        "per_layer": per_layer,
    }


@torch.no_grad()
def reconstruction_png(
    model: APMAE, images: Float[Tensor, "n s s"], path: Path, *, seed: int = 1234, scale: int = 3
) -> Path:
    """A grid PNG: one column per example, rows = original, masked input, reconstruction (masked patches
    predicted, visible ones copied). Colours: viridis-like ramp on the scaled [0, 1] values."""
    from PIL import Image

    model.eval()
    device = model.lower_ids.device
    chunk = images.to(device).float()
    generator = torch.Generator().manual_seed(seed)
    visible, masked = model.random_masking(chunk.shape[0], generator)
    visible, masked = visible.to(device), masked.to(device)
    pred = model.forward_decoder(model.forward_encoder(chunk, visible), visible, masked).float().clamp(0, 1)
    patches = model.patchify(chunk)
    shown = patches.clone()
    shown.scatter_(1, masked.unsqueeze(-1).expand(-1, -1, patches.shape[-1]), 0.0)
    rebuilt = patches.clone()
    rebuilt.scatter_(1, masked.unsqueeze(-1).expand(-1, -1, patches.shape[-1]), pred)
    rows = [chunk, model.unpatchify(shown), model.unpatchify(rebuilt)]
    grid = _tile(rows, masked_overlay=_mask_overlay(model, masked))
    rgb = _colour(grid)
    image = Image.fromarray(rgb).resize(
        (rgb.shape[1] * scale, rgb.shape[0] * scale), Image.Resampling.NEAREST
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _mask_overlay(model: APMAE, masked: Int[Tensor, "n masked"]) -> Float[Tensor, "n s s"]:
    """1 on pixels of masked patches (drawn grey in the masked-input row), else 0."""
    marks = torch.zeros(
        masked.shape[0], model.config.num_patches, model.config.pixels_per_patch, device=masked.device
    )
    marks.scatter_(1, masked.unsqueeze(-1).expand(-1, -1, marks.shape[-1]), 1.0)
    return model.unpatchify(marks)


def _tile(rows: list[Tensor], *, masked_overlay: Tensor, gap: int = 2) -> np.ndarray:
    n, size = rows[0].shape[0], rows[0].shape[-1]
    canvas = np.full((len(rows) * (size + gap) + gap, n * (size + gap) + gap), np.nan, dtype=np.float32)
    for r, row in enumerate(rows):
        values = row.cpu().numpy().copy()
        if r == 1:
            values[masked_overlay.cpu().numpy() > 0] = -1.0  # marker for "hidden"
        for c in range(n):
            y, x = gap + r * (size + gap), gap + c * (size + gap)
            canvas[y : y + size, x : x + size] = values[c]
    return canvas


def _colour(grid: np.ndarray) -> np.ndarray:
    """Map [0, 1] to a dark-blue -> green -> yellow ramp; -1 (hidden) to grey; NaN (gaps) to white."""
    stops = np.array(
        [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32
    )
    values = np.clip(np.nan_to_num(grid, nan=0.0), 0.0, 1.0) * (len(stops) - 1)
    low = np.floor(values).astype(int).clip(0, len(stops) - 2)
    frac = (values - low)[..., None]
    rgb = stops[low] * (1 - frac) + stops[low + 1] * frac
    rgb[grid == -1.0] = (150, 150, 150)
    rgb[np.isnan(grid)] = (255, 255, 255)
    return rgb.astype(np.uint8)
