"""The AP-MAE checkpoint shipped for SmolLM2.

It is present, small, loadable by default, and embeds a whole inference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attnlens.apmae.load import DEFAULT_CHECKPOINT, load_apmae
from attnlens.config import Settings


def test_default_checkpoint_ships_with_card_and_picture():
    for name in ("config.json", "model.safetensors", "MODEL_CARD.md", "reconstruction.png"):
        assert (DEFAULT_CHECKPOINT / name).is_file(), name
    assert (DEFAULT_CHECKPOINT / "model.safetensors").stat().st_size <= 25 * 1024 * 1024
    config = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())
    assert config["source_length"] == 256 and config["decoder_mode"] == "mae"


def test_settings_load_the_default_and_embed_one_smollm2_inference(tmp_path: Path):
    model = load_apmae(Settings(data_dir=tmp_path), "cpu")
    assert model.config.max_length == 64 and model.config.encoder_dim == 128
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(270, 256, 256, generator=generator) * 3
    patterns = logits.masked_fill(torch.ones(256, 256, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    embeddings = model.embed(patterns, batch_size=128)
    assert embeddings.shape == (270, 128) and embeddings.dtype == torch.float32
    assert torch.isfinite(embeddings).all()
    assert torch.equal(embeddings[:128], model.embed(patterns[:128]))  # batching does not change results


@pytest.mark.slow
def test_default_checkpoint_tells_real_heads_apart(smollm2):
    from attnlens.apmae.evaluate import masked_errors
    from attnlens.apmae.scaling import prepare_patterns

    model = load_apmae("default", "cpu")
    text = (Path(__file__).read_text() * 4)[:4000]
    ids = smollm2.encode(text)[:256]
    capture = smollm2.capture([ids])
    patterns = capture.attention[0].reshape(-1, 256, 256)  # (layer*head, q, k)
    embeddings = model.embed(patterns)
    assert embeddings.shape == (270, 128)
    # heads of one inference differ, so their embeddings must too
    distances = torch.cdist(embeddings, embeddings)
    assert float(distances[~torch.eye(270, dtype=torch.bool)].min()) > 0
    images = prepare_patterns(patterns, source_length=256, max_length=64)
    errors = masked_errors(model, images, images.mean(0))
    assert errors["model"].mean() < errors["mean_visible"].mean()
