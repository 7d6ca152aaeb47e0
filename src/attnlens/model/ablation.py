"""Zero-ablation of attention heads: the head's output is set to 0 before the output projection.

A forward pre-hook on each layer's attention output projection zeroes the input slice
`[..., h*head_dim:(h+1)*head_dim]` of every ablated head `h`. The attention pattern itself and the
K/V cache are untouched; the projection's bias (if any) remains. This equals zeroing those weight
columns, and it works with `generate` and its KV cache. Hooks are always removed on exit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from attnlens.errors import UnsupportedArchitecture
from attnlens.heads import HeadRef

# (path to the layer list, path from a layer to its attention output projection)
_LAYOUTS = (
    ("model.layers", "self_attn.o_proj"),  # Llama, StarCoder2, Mistral, Qwen2, Gemma
    ("transformer.h", "attn.c_proj"),  # GPT-2, GPT-BigCode (StarCoder 1)
    ("gpt_neox.layers", "attention.dense"),  # GPT-NeoX, Pythia
)


def _get(obj: object, path: str) -> object | None:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def attention_output_projections(model: nn.Module) -> list[nn.Module]:
    """Each layer's attention output projection, in layer order."""
    for layers_path, proj_path in _LAYOUTS:
        layers = _get(model, layers_path)
        if isinstance(layers, nn.ModuleList):
            projections = [_get(layer, proj_path) for layer in layers]
            if all(isinstance(p, nn.Module) for p in projections):
                return projections  # type: ignore[return-value]
    raise UnsupportedArchitecture(
        f"{type(model).__name__}: attention output projections not found (known layouts: "
        + ", ".join(f"{a}[i].{b}" for a, b in _LAYOUTS)
        + "). Head ablation needs one of these."
    )


@contextmanager
def ablate_heads(model: nn.Module, heads: Iterable[HeadRef], head_dim: int) -> Iterator[None]:
    """Within the block, the named heads contribute nothing to the residual stream."""
    projections = attention_output_projections(model)
    by_layer: dict[int, list[int]] = {}
    for ref in heads:
        by_layer.setdefault(ref.layer, []).append(ref.head)
    handles = []
    try:
        for layer, head_ids in sorted(by_layer.items()):
            projection = projections[layer]
            in_features = _in_features(projection)
            keep = torch.ones(in_features)
            for h in head_ids:
                keep[h * head_dim : (h + 1) * head_dim] = 0.0
            handles.append(projection.register_forward_pre_hook(_zeroing_hook(keep)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _in_features(projection: nn.Module) -> int:
    if isinstance(projection, nn.Linear):
        return projection.in_features
    weight = getattr(projection, "weight", None)  # GPT-2's Conv1D stores (in, out)
    if weight is None:
        raise UnsupportedArchitecture(f"cannot read the input size of {type(projection).__name__}.")
    return int(weight.shape[0])


def _zeroing_hook(keep: torch.Tensor):
    cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        hidden = args[0]  # (batch, seq, heads * head_dim)
        key = (hidden.device, hidden.dtype)
        if key not in cache:
            cache[key] = keep.to(device=hidden.device, dtype=hidden.dtype)
        # Multiplying by exactly 1.0 keeps the other heads bit-identical.
        return (hidden * cache[key], *args[1:])

    return hook
