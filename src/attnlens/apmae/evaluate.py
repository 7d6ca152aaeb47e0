"""Held-out evaluation of an AP-MAE checkpoint against two trivial baselines, and a reconstruction PNG.

All three predictors are scored on the same masked patches (one fixed random mask per image):
- the model;
- `mean_image`: a per-pixel mean image that knows nothing about the pattern at hand: the mean of the
  training images when they are at hand, else the mean of the evaluated set's other windows (leave one
  window out);
- `mean_visible`: every masked pixel predicted as the mean pixel value of that image's visible patches.
Intervals: percentile bootstrap over windows (inferences), since the heads of one inference are not
independent of each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from attnlens.apmae.cache import PatternSet
from attnlens.apmae.model import APMAE
from attnlens.errors import InsufficientData

PREDICTORS = ("model", "mean_image", "mean_visible")


def _gather(patches: Tensor, ids: Tensor) -> Tensor:
    return patches.gather(1, ids.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))


@torch.no_grad()
def masked_errors(
    model: APMAE,
    images: Float[Tensor, "n s s"],
    mean_image: Float[Tensor, "s s"] | Float[Tensor, "m s s"],
    *,
    mean_index: Int[Tensor, " n"] | None = None,
    batch_size: int = 512,
    seed: int = 1234,
) -> dict[str, Float[Tensor, " n"]]:
    """Per-image masked-patch MSE of the model and both baselines (same masks for all three).

    `mean_image` is one image for all, or `m` images with `mean_index` saying which one each image gets."""
    model.eval()
    device = model.lower_ids.device
    generator = torch.Generator().manual_seed(seed)
    several = mean_image.dim() == 3
    if several and (mean_index is None or mean_index.shape[0] != images.shape[0]):
        raise ValueError("several mean images need a mean_index with one entry per image.")
    mean_patches = model.patchify(
        mean_image.to(device).float() if several else mean_image[None].to(device).float()
    )  # (1 or m, patch, pixel)
    out: dict[str, list[Tensor]] = {name: [] for name in PREDICTORS}
    for start in range(0, images.shape[0], batch_size):
        chunk = images[start : start + batch_size].to(device).float()
        if several:
            assert mean_index is not None
            chunk_means = mean_patches[mean_index[start : start + batch_size].to(device)]
        else:
            chunk_means = mean_patches.expand(chunk.shape[0], -1, -1)
        visible, masked = model.random_masking(chunk.shape[0], generator)
        visible, masked = visible.to(device), masked.to(device)
        pred = model.forward_decoder(model.forward_encoder(chunk, visible), visible, masked).float()
        patches = model.patchify(chunk)
        target = _gather(patches, masked)
        seen_mean = _gather(patches, visible).mean(dim=(1, 2), keepdim=True)  # (batch, 1, 1)
        baseline_image = _gather(chunk_means, masked)
        out["model"].append(((pred - target) ** 2).mean(dim=(1, 2)).cpu())
        out["mean_image"].append(((baseline_image - target) ** 2).mean(dim=(1, 2)).cpu())
        out["mean_visible"].append(((seen_mean - target) ** 2).mean(dim=(1, 2)).cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def leave_one_window_out_means(
    patterns: PatternSet,
) -> tuple[Float[Tensor, "m s s"], Int[Tensor, " n"]]:
    """For every window, the per-pixel mean image of all the other windows' patterns (so the
    `mean_image` baseline never sees the inference it predicts), and which of those each pattern gets."""
    windows, index = torch.unique(patterns.window, return_inverse=True)
    if len(windows) < 2:
        raise InsufficientData("a leave-one-window-out mean image needs patterns of at least two windows.")
    size = patterns.images.shape[1:]
    sums = torch.zeros(len(windows), *size, dtype=torch.float64)
    for start in range(0, len(patterns), 4096):
        chunk = patterns.images[start : start + 4096].double()
        sums.index_add_(0, index[start : start + 4096], chunk)
    counts = torch.bincount(index, minlength=len(windows)).double()
    others = (sums.sum(0, keepdim=True) - sums) / (counts.sum() - counts)[:, None, None]
    return others.float(), index


def bootstrap_intervals(
    errors: dict[str, Tensor],
    window: Int[Tensor, " n"],
    layer: Int[Tensor, " n"],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, object]:
    """Percentile intervals for the mean errors and the model/baseline ratios, overall and per layer,
    resampling whole windows with replacement (one draw of windows serves every predictor and layer)."""
    _, win = torch.unique(window, return_inverse=True)
    layers, lay = torch.unique(layer, return_inverse=True)
    n_win, n_lay = int(win.max()) + 1, len(layers)
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(n_win, (resamples, n_win), generator=generator)
    weights = torch.zeros(resamples, n_win, dtype=torch.float64)
    weights.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
    cell = win * n_lay + lay
    sizes = torch.bincount(cell, minlength=n_win * n_lay).double().view(n_win, n_lay)
    total = weights @ sizes  # (resamples, layers)
    estimates: dict[str, Tensor] = {}
    per_layer: dict[str, Tensor] = {}
    for name, values in errors.items():
        sums = torch.zeros(n_win * n_lay, dtype=torch.float64).index_add_(0, cell, values.double())
        weighted = weights @ sums.view(n_win, n_lay)
        estimates[name] = weighted.sum(1) / total.sum(1)
        per_layer[name] = weighted / total  # NaN where a resample holds no pattern of a layer
    tail = (1 - level) / 2
    quantiles = torch.tensor([tail, 1 - tail], dtype=torch.float64)

    def interval(samples: Tensor) -> list[float]:
        return [float(q) for q in torch.nanquantile(samples, quantiles, dim=0)]

    def summary(values: dict[str, Tensor]) -> dict[str, list[float]]:
        found = {name: interval(v) for name, v in values.items()}
        found["ratio_to_mean_image"] = interval(values["model"] / values["mean_image"])
        found["ratio_to_mean_visible"] = interval(values["model"] / values["mean_visible"])
        return found

    return {
        "level": level,
        "resamples": resamples,
        "unit": "window",
        "overall": summary(estimates),
        "per_layer": {
            str(int(layer_id)): summary({name: v[:, i] for name, v in per_layer.items()})
            for i, layer_id in enumerate(layers)
        },
    }


def evaluate(
    model: APMAE,
    heldout: PatternSet,
    mean_image: Float[Tensor, "s s"] | Float[Tensor, "m s s"],
    *,
    mean_index: Int[Tensor, " n"] | None = None,
    seed: int = 1234,
    bootstrap: int = 0,
) -> dict[str, object]:
    """Overall and per-layer masked-patch MSE for the model and the baselines on a held-out set, with
    bootstrap intervals over windows when `bootstrap` (the number of resamples) is positive."""
    errors = masked_errors(model, heldout.images, mean_image, mean_index=mean_index, seed=seed)
    layers = sorted(set(heldout.layer.tolist()))
    per_layer = {
        str(layer): {k: float(v[heldout.layer == layer].mean()) for k, v in errors.items()}
        for layer in layers
    }
    overall = {k: float(v.mean()) for k, v in errors.items()}
    report: dict[str, object] = {
        "patterns": len(heldout),
        "inferences": len(set(heldout.window.tolist())),
        "files": len(set(heldout.files)),
        "decoder_mode": model.config.decoder_mode,
        "masked_patch_mse": overall,
        "ratio_to_mean_image": overall["model"] / overall["mean_image"],
        "ratio_to_mean_visible": overall["model"] / overall["mean_visible"],
        "per_layer": per_layer,
    }
    if bootstrap > 0:
        report["intervals"] = bootstrap_intervals(errors, heldout.window, heldout.layer, resamples=bootstrap)
    return report


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
