"""CUDA paths (bf16 capture, ablation on the GPU). Skipped without a GPU, with the reason printed."""

from __future__ import annotations

import pytest
import torch

from attnlens.heads import HeadRef
from attnlens.model import TargetModel

pytestmark = pytest.mark.gpu


def test_tiny_on_cuda_bf16_capture_and_ablation(models_cache):
    model = TargetModel.load("tiny-starcoder2", models_dir=models_cache, device="cuda")
    assert model.info.dtype == "torch.bfloat16" and model.device.type == "cuda"
    ids = list(range(5, 200))
    cap = model.capture([ids, ids[:50]])
    assert cap.attention.device.type == "cuda"
    base = model.next_token_logits(ids)
    ablated = model.next_token_logits(ids, ablate=[HeadRef(0, 0)])
    assert not torch.equal(base, ablated)
    assert torch.equal(base, model.next_token_logits(ids))
