"""Pattern statistics and thumbnails on synthetic patterns whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlens.atlas.patterns import pattern_stats, thumbnails
from attnlens.contracts.head_scores import RELATIONAL_SCORE_NAMES, SCORE_NAMES

N = 64


def _diagonal() -> torch.Tensor:
    return torch.eye(N)


def _previous() -> torch.Tensor:
    p = torch.zeros(N, N)
    p[0, 0] = 1
    p[torch.arange(1, N), torch.arange(N - 1)] = 1
    return p


def _sink() -> torch.Tensor:
    p = torch.zeros(N, N)
    p[:, 0] = 1
    return p


def _uniform() -> torch.Tensor:
    p = torch.tril(torch.ones(N, N))
    return p / p.sum(-1, keepdim=True)


def test_stats_name_the_pattern_types():
    stats = pattern_stats(torch.stack([_diagonal(), _previous(), _sink(), _uniform()]))
    assert stats.diagonal_mass[0] == pytest.approx(1.0)
    assert stats.previous_token_mass[1] == pytest.approx(1.0)
    assert stats.first_token_mass[2] == pytest.approx(1.0)
    assert stats.entropy[:3] == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert stats.entropy[3] == pytest.approx(1.0, abs=1e-5)
    assert stats.local_mass[0] == pytest.approx(1.0) and stats.local_mass[2] < 0.2
    row = stats.row(3)
    assert set(row) == set(SCORE_NAMES)
    # Without the input's token relations, no relational score is claimed.
    assert all(row[name] is None for name in RELATIONAL_SCORE_NAMES)


def _reference_stats(p: np.ndarray) -> dict[str, np.ndarray]:
    """The definitions, row by row in float64."""
    batch, n, _ = p.shape
    out = {
        name: np.zeros(batch)
        for name in ("entropy", "diagonal_mass", "previous_token_mass", "first_token_mass", "local_mass")
    }
    for b in range(batch):
        for q in range(n):
            row = p[b, q, : q + 1]
            if q > 0:
                nz = row[row > 0]
                out["entropy"][b] += -(nz * np.log(nz)).sum() / np.log(q + 1) / (n - 1)
                out["previous_token_mass"][b] += p[b, q, q - 1] / (n - 1)
            out["diagonal_mass"][b] += p[b, q, q] / n
            out["first_token_mass"][b] += p[b, q, 0] / n
            out["local_mass"][b] += row[max(0, q - 7) :].sum() / n
    return out


@pytest.mark.parametrize("n", [40, 150])  # within one block of rows of the entropy, and over three
def test_stats_match_the_definitions_on_random_causal_patterns(n: int):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, n, n)) * 3
    logits[:, np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] = -np.inf
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p[rng.random(p.shape) < 0.2] = 0.0  # exact zeros, as float32 softmax gives far from the peak
    p[:, np.arange(n), np.arange(n)] += 1e-3
    p /= p.sum(-1, keepdims=True)
    stats = pattern_stats(torch.from_numpy(p.astype(np.float32)))
    for name, expected in _reference_stats(p).items():
        np.testing.assert_allclose(getattr(stats, name), expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_thumbnails_are_small_uint8_and_keep_the_structure():
    thumbs = thumbnails(torch.stack([_diagonal(), _sink()]), size=16)
    assert thumbs.shape == (2, 16, 16) and thumbs.dtype == np.uint8
    assert (np.diag(thumbs[0]) == 255).all()
    assert thumbs[0][np.triu_indices(16, 1)].max() == 0  # causal: nothing above the diagonal
    assert (thumbs[1][:, 0] == 255).all() and thumbs[1][:, 1:].max() == 0


def test_thumbnails_of_odd_sizes_use_area_interpolation():
    p = _uniform()[:50, :50]
    p = p / p.sum(-1, keepdim=True)
    assert thumbnails(p[None], size=32).shape == (1, 32, 32)
