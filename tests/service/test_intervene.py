"""Ablate-and-regenerate on the tiny StarCoder2."""

from __future__ import annotations

import pytest
import torch

from attnlens.atlas.intervene import ablate_and_regenerate, kl_divergence
from attnlens.heads import HeadRef
from attnlens.model import TargetModel

JAVA = "public static int max(int a, int b) {\n    return a >= b ? a : b;\n}\n" * 3


@pytest.fixture(scope="module")
def prompt(tiny_model: TargetModel) -> list[int]:
    return tiny_model.encode(JAVA)[:40]


def test_ablating_nothing_reproduces_the_baseline_exactly(tiny_model: TargetModel, prompt):
    out = ablate_and_regenerate(tiny_model, prompt, [], max_new_tokens=8, expected_token_id=prompt[5])
    assert out.baseline_ids == out.ablated_ids and not out.changed
    assert out.kl_at_hole == 0.0
    assert out.delta_p_expected == 0.0
    assert [op.op for op in out.diff] == ["equal"]


def test_ablating_every_head_changes_the_distribution(tiny_model: TargetModel, prompt):
    heads = [HeadRef(layer, h) for layer in range(4) for h in range(4)]
    out = ablate_and_regenerate(tiny_model, prompt, heads, max_new_tokens=8, expected_token_id=prompt[5])
    assert out.kl_at_hole > 1e-4
    assert out.p_expected_baseline != out.p_expected_ablated
    assert out.heads[0] == "L0H0" and len(out.heads) == 16
    rebuilt_baseline = [t for op in out.diff if op.op != "insert" for t in op.baseline]
    assert "".join(rebuilt_baseline) == "".join(tiny_model.decode([t]) for t in out.baseline_ids)


def test_kl_divergence_matches_a_direct_computation():
    p = torch.tensor([1.0, 2.0, 0.5])
    q = torch.tensor([0.2, 2.5, 0.1])
    pp, qq = torch.softmax(p.double(), 0), torch.softmax(q.double(), 0)
    assert kl_divergence(p, q) == pytest.approx(float((pp * (pp / qq).log()).sum()), rel=1e-12)
    assert kl_divergence(p, p) == 0.0
