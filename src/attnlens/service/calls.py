"""Interactive model calls the worker serves: a head's full pattern, embedding an uploaded pattern,
ablating heads and re-generating. Each runs through the worker's `ModelGate`, on its model thread."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import torch

from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef
from attnlens.model import Generation
from attnlens.service.intervene import AblationOutcome, ablate_and_regenerate

if TYPE_CHECKING:
    from attnlens.apmae import APMAE
    from attnlens.model import TargetModel

V = TypeVar("V")

CACHED_CAPTURES = 4
CACHED_BASELINES = 32  # a baseline keeps its first-step logits: 49,152 floats (192 KB) for SmolLM2


def _prompt_key(prompt_ids: Sequence[int], *extra: object) -> str:
    digest = hashlib.sha256(np.asarray(prompt_ids, dtype=np.int64).tobytes())
    digest.update(repr(extra).encode())
    return digest.hexdigest()


class _Lru(Generic[V]):
    """The last `size` results by key; computing happens outside the lock."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get_or_compute(self, key: str, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class AttentionCache(_Lru[torch.Tensor]):
    """The attention of the last few prompts (float16 on the CPU): opening several heads of one
    inference runs the model once."""

    def __init__(self, size: int = CACHED_CAPTURES) -> None:
        super().__init__(size)

    def get_or_capture(self, model: TargetModel, prompt_ids: Sequence[int]) -> torch.Tensor:
        # (layer, head, q, k)
        return self.get_or_compute(
            _prompt_key(prompt_ids), lambda: model.capture([list(prompt_ids)]).pattern(0).to("cpu", torch.float16)
        )


class BaselineCache(_Lru[Generation]):
    """Un-ablated generations of the last few prompts: clicking one head after another in an inference
    re-generates only with the ablation (greedy decoding is deterministic, so the baseline cannot change)."""

    def __init__(self, size: int = CACHED_BASELINES) -> None:
        super().__init__(size)

    def get_or_generate(self, model: TargetModel, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
        return self.get_or_compute(
            _prompt_key(prompt_ids, max_new_tokens), lambda: model.generate(prompt_ids, max_new_tokens)
        )


def head_pattern(
    model: TargetModel, cache: AttentionCache, prompt_ids: Sequence[int], ref: HeadRef
) -> np.ndarray:
    """The full (q, k) attention of one head on one prompt, float32."""
    ref.check(model.info.n_layers, model.info.n_heads)
    return cache.get_or_capture(model, prompt_ids)[ref.layer, ref.head].float().numpy()


def embed_pattern(apmae: APMAE, pattern: np.ndarray) -> np.ndarray:
    """AP-MAE embedding of one uploaded (n, n) causal attention pattern; checks it is one."""
    p = np.asarray(pattern, dtype=np.float32)
    n = apmae.config.source_length
    if p.shape != (n, n):
        raise InvalidInput(f"the pattern must be {n} x {n} (this AP-MAE's input); got {p.shape}.")
    if not np.isfinite(p).all() or (p < 0).any():
        raise InvalidInput("the pattern must hold finite, non-negative attention weights.")
    if np.abs(np.triu(p, 1)).max() > 0:
        raise InvalidInput("the pattern must be causal: every value above the diagonal must be 0.")
    rows = p.sum(axis=1)
    if np.abs(rows - 1).max() > 1e-2:
        raise InvalidInput("each row of the pattern must sum to 1 (it is a softmax over keys).")
    return apmae.embed(torch.from_numpy(p)[None]).float().cpu().numpy()[0]


def ablate(
    model: TargetModel,
    prompt_ids: Sequence[int],
    heads: Sequence[HeadRef],
    *,
    max_new_tokens: int,
    expected_token_id: int | None,
    baselines: BaselineCache | None = None,
) -> AblationOutcome:
    for ref in heads:
        ref.check(model.info.n_layers, model.info.n_heads)
    baseline = baselines.get_or_generate(model, prompt_ids, max_new_tokens) if baselines is not None else None
    return ablate_and_regenerate(
        model, prompt_ids, heads, max_new_tokens=max_new_tokens, expected_token_id=expected_token_id,
        baseline=baseline,
    )  # fmt: skip
