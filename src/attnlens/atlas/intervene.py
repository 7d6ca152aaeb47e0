"""Intervene on heads: ablate some and re-generate (what changed in the completion, the expected token's
probability, the next-token distribution at the hole), and the other interactive model calls the worker
serves (a head's full pattern, embedding an uploaded pattern). Each runs on the worker's model thread."""

from __future__ import annotations

import difflib
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import torch
from jaxtyping import Float

from attnlens.contracts.results import AblationOutcome, DiffOp
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef
from attnlens.model import Generation, TargetModel

if TYPE_CHECKING:
    from attnlens.apmae import APMAE

V = TypeVar("V")

CACHED_CAPTURES = 4
CACHED_BASELINES = 32  # a baseline keeps its first-step logits: 49,152 floats (192 KB) for SmolLM2


def kl_divergence(p_logits: Float[torch.Tensor, " vocab"], q_logits: Float[torch.Tensor, " vocab"]) -> float:
    """KL(P || Q) in nats between the softmax distributions of two logit vectors (float64 for accuracy)."""
    log_p = torch.log_softmax(p_logits.double(), dim=-1)
    log_q = torch.log_softmax(q_logits.double(), dim=-1)
    value = float((log_p.exp() * (log_p - log_q)).sum())
    return max(value, 0.0)  # rounding can give -1e-17 for identical inputs


def token_diff(model: TargetModel, baseline: Sequence[int], ablated: Sequence[int]) -> list[DiffOp]:
    """A token-level diff (difflib's opcodes over token ids, shown as token strings)."""
    matcher = difflib.SequenceMatcher(a=list(baseline), b=list(ablated), autojunk=False)
    ops = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        ops.append(
            DiffOp(
                op=tag,
                baseline=[model.decode([t]) for t in baseline[i1:i2]] if baseline[i1:i2] else [],
                ablated=[model.decode([t]) for t in ablated[j1:j2]] if ablated[j1:j2] else [],
            )
        )
    return ops


def ablate_and_regenerate(
    model: TargetModel,
    prompt_ids: Sequence[int],
    heads: Iterable[HeadRef],
    *,
    max_new_tokens: int,
    expected_token_id: int | None = None,
    stop_ids: Iterable[int] | None = None,
    baseline: Generation | None = None,
) -> AblationOutcome:
    """Generate with and without the heads ablated and compare. Ablating no head reproduces the baseline
    exactly (same tokens, zero KL): it is the baseline.

    The ablated completion is decoded with the baseline's as its draft (`TargetModel.generate`): ablating a
    few heads changes few tokens, so it usually costs one pass over the prompt instead of one per token."""
    refs = sorted(frozenset(heads))
    stops = list(stop_ids) if stop_ids is not None else None
    if baseline is None:
        baseline = model.generate(prompt_ids, max_new_tokens, stop_ids=stops)
    # Nothing to ablate is the baseline itself (not a second run whose float sums may fall differently).
    ablated = (
        model.generate(prompt_ids, max_new_tokens, ablate=refs, stop_ids=stops, draft=baseline.new_ids)
        if refs
        else baseline
    )
    return AblationOutcome(
        heads=[r.name for r in refs],
        baseline_text=baseline.text,
        ablated_text=ablated.text,
        baseline_ids=baseline.new_ids,
        ablated_ids=ablated.new_ids,
        diff=token_diff(model, baseline.new_ids, ablated.new_ids),
        kl_at_hole=kl_divergence(baseline.first_logits, ablated.first_logits),
        changed=baseline.new_ids != ablated.new_ids,
        expected_token_id=expected_token_id,
        p_expected_baseline=None
        if expected_token_id is None
        else token_probability(baseline.first_logits, expected_token_id),
        p_expected_ablated=None
        if expected_token_id is None
        else token_probability(ablated.first_logits, expected_token_id),
    )


def token_probability(logits: Float[torch.Tensor, " vocab"], token_id: int) -> float:
    """p(token_id) under the softmax of `logits` (float64; 0.0 where the logits overflow to NaN)."""
    value = float(torch.softmax(logits.double(), dim=-1)[token_id])
    return 0.0 if math.isnan(value) else value


# -- caches and the calls the worker serves ------------------------------------------------------------------


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
            _prompt_key(prompt_ids),
            lambda: model.capture([list(prompt_ids)]).pattern(0).to("cpu", torch.float16),
        )


class BaselineCache(_Lru[Generation]):
    """Un-ablated generations of the last few prompts: clicking one head after another in an inference
    re-generates only with the ablation (greedy decoding is deterministic, so the baseline cannot change)."""

    def __init__(self, size: int = CACHED_BASELINES) -> None:
        super().__init__(size)

    def get_or_generate(
        self,
        model: TargetModel,
        prompt_ids: Sequence[int],
        max_new_tokens: int,
        draft: Sequence[int] | None = None,
    ) -> Generation:
        """`draft` (the completion the build stored) only speeds decoding up; it cannot change the result,
        so it is not part of the key."""
        return self.get_or_compute(
            _prompt_key(prompt_ids, max_new_tokens),
            lambda: model.generate(prompt_ids, max_new_tokens, draft=draft),
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
    draft_ids: Sequence[int] | None = None,
) -> AblationOutcome:
    """Ablate `heads` on one prompt; `draft_ids`, the completion stored for it, speeds up the baseline."""
    for ref in heads:
        ref.check(model.info.n_layers, model.info.n_heads)
    cache = baselines if baselines is not None else BaselineCache(size=0)
    baseline = cache.get_or_generate(model, prompt_ids, max_new_tokens, draft=draft_ids)
    return ablate_and_regenerate(
        model, prompt_ids, heads, max_new_tokens=max_new_tokens, expected_token_id=expected_token_id,
        baseline=baseline,
    )  # fmt: skip
