"""Anomaly ranking on hand-built error columns whose answers are known, and the reconstruction error itself
on a tiny AP-MAE: deterministic, batch-independent, and the embeddings unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlens.analysis.anomalies import ERROR, TAIL, error_distributions, most_unusual
from attnlens.heads import HeadRef
from attnlens.store.head_scores import ScoreTable


def table(layer, head, errors) -> ScoreTable:
    n = len(errors)
    return ScoreTable(
        model_name="m", layer=np.asarray(layer), head=np.asarray(head), inference_ids=np.arange(n) // 2,
        pattern_ids=np.arange(1, n + 1), scores={ERROR: np.asarray(errors, dtype=np.float64)},
        n_inferences=n // 2, n_inferences_unscored=0,
    )  # fmt: skip


def test_percentile_and_robust_z_are_per_head():
    # Head L0H0 has small errors, L0H1 large ones: 0.5 is ordinary for L0H1 and extreme for L0H0.
    errors = [0.1, 0.5, 0.11, 0.52, 0.12, 0.48, 0.13, 0.55, 0.5, 0.51]
    layer = [0] * 10
    head = [0, 1] * 5
    dist = error_distributions(table(layer, head, errors))
    small, large = dist.get(HeadRef(0, 0)), dist.get(HeadRef(0, 1))
    assert small.median == pytest.approx(0.12) and large.median == pytest.approx(0.51)
    assert small.percentile(0.12) == pytest.approx(3 / 5)
    assert small.percentile(0.5) == 1.0 and large.percentile(0.5) == pytest.approx(2 / 5)
    # The 0.5 of L0H0 (pattern id 9) is the atlas's most unusual pattern although L0H1 has larger errors.
    top = most_unusual(table(layer, head, errors), dist, 2)
    assert top[0].pattern_id == 9 and top[0].head == HeadRef(0, 0) and top[0].percentile == 1.0
    assert top[0].robust_z > top[1].robust_z


def test_unusual_share_counts_heads_in_their_tail():
    rng = np.random.default_rng(0)
    errors = rng.normal(1.0, 0.1, size=(200, 4))
    dist = error_distributions(table(np.zeros(800, int), np.tile(np.arange(4), 200), errors.reshape(-1)))
    typical = {HeadRef(0, h): 1.0 for h in range(4)}
    assert dist.unusual_share(typical) == 0.0
    assert dist.unusual_share({HeadRef(0, 0): 5.0, HeadRef(0, 1): 1.0}) == 0.5
    assert dist.unusual_share({HeadRef(3, 3): 5.0}) is None  # no such head in the atlas
    assert TAIL == 0.99


def test_reconstruction_errors_are_deterministic_and_leave_the_embeddings_alone(tiny_apmae_folder):
    from attnlens.apmae.load import load_apmae

    apmae = load_apmae(tiny_apmae_folder)
    n = apmae.config.source_length
    causal = torch.tril(torch.rand(6, n, n, generator=torch.Generator().manual_seed(0)))
    causal = causal / causal.sum(-1, keepdim=True)
    embeddings, errors = apmae.embed_with_errors(causal, batch_size=4)
    # The same call twice: bit for bit (one fixed mask). Another batch size changes the order of float
    # sums inside the matmuls, so only rounding may differ (it did, in 1 run of 2, on random inputs).
    assert torch.equal(errors, apmae.embed_with_errors(causal, batch_size=4)[1])
    assert torch.allclose(errors, apmae.embed_with_errors(causal)[1], rtol=1e-5, atol=0)
    assert torch.equal(embeddings, apmae.embed(causal, batch_size=4))
    assert errors.shape == (6,) and bool((errors >= 0).all())
