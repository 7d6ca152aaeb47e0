"""AP-MAE model: shapes, scaling, masking, loss, decoder modes, overfitting, save/load, released layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attnlens.apmae import APMAE, APMAEConfig
from attnlens.apmae.layers import Attention, FeedForward, Transformer
from attnlens.apmae.load import load_apmae
from attnlens.apmae.model import APMAEDecoder, APMAEEncoder, lower_patch_ids
from attnlens.apmae.scaling import log_normalize, pool_patterns, prepare_patterns
from attnlens.errors import CheckpointMismatch, ModelUnavailable

pytestmark = pytest.mark.usefixtures("one_thread")


def causal_patterns(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    """Random softmax attention with a causal mask: rows sum to 1, upper triangle exactly 0."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, n, n, generator=generator) * 3
    logits = logits.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return logits.softmax(dim=-1)


def tiny(mode: str = "mae", seed: int = 0, **overrides) -> APMAE:
    torch.manual_seed(seed)
    return APMAE(APMAEConfig.tiny(decoder_mode=mode, **overrides))


# -- shapes -----------------------------------------------------------------------------------------


def test_layer_shapes():
    x = torch.randn(3, 7, 32)
    assert FeedForward(32, 64, act="gelu", eps=1e-12)(x).shape == (3, 7, 32)
    assert Attention(32, heads=2, dim_head=16, eps=1e-12, qkv_bias=False)(x).shape == (3, 7, 32)
    block = Transformer(32, depth=2, heads=2, dim_head=16, mlp_dim=64, act="gelu", eps=1e-12, qkv_bias=False)
    assert block(x).shape == (3, 7, 32)


@pytest.mark.parametrize("mode", ["mae", "paper"])
def test_encoder_decoder_and_model_shapes(mode):
    config = APMAEConfig.tiny(decoder_mode=mode, decoder_dim=24, decoder_heads=2, decoder_dim_head=12)
    model = APMAE(config)
    images = log_normalize(causal_patterns(5, 32))
    patches = model.patchify(images)
    assert patches.shape == (5, 16, 64)
    assert torch.equal(model.unpatchify(patches), images)
    visible, masked = model.random_masking(5)
    assert visible.shape == (5, 5) and masked.shape == (5, 5)  # 10 lower patches, int(0.5 * 10) masked
    assert isinstance(model.encoder, APMAEEncoder) and isinstance(model.decoder, APMAEDecoder)
    latent = model.forward_encoder(images, visible)
    assert latent.shape == (5, 6, 32)  # CLS + 5 visible, encoder width
    pred = model.forward_decoder(latent, visible, masked)
    assert pred.shape == (5, 5, 64)
    out = model(images)
    assert out.loss.ndim == 0 and out.pred.shape == (5, 5, 64)
    assert model.embed(causal_patterns(5, 32)).shape == (5, 32)
    assert model.embed_images(images).shape == (5, 32)


def test_embed_pools_longer_sources_and_rejects_bigger_patterns():
    model = tiny(source_length=64)
    assert model.config.pool_factor == 2
    assert model.embed(causal_patterns(3, 64), batch_size=2).shape == (3, 32)
    with pytest.raises(CheckpointMismatch, match="at most 64x64"):
        model.embed(causal_patterns(1, 128))
    with pytest.raises(CheckpointMismatch, match="square"):
        model.embed(torch.rand(2, 64, 32))


def test_config_rejects_sizes_that_do_not_divide():
    with pytest.raises(CheckpointMismatch, match="multiple of patch_size"):
        APMAEConfig.tiny(max_length=30)
    with pytest.raises(CheckpointMismatch, match="decoder_mode"):
        APMAEConfig.tiny(decoder_mode="other")


# -- scaling ----------------------------------------------------------------------------------------


def reference_log_normalize(pattern: np.ndarray) -> np.ndarray:
    """The paper's scaler for one head, written plainly in float64."""
    out = np.zeros_like(pattern, dtype=np.float64)
    positive = pattern > 0
    logs = np.log(pattern[positive].astype(np.float64))
    m = logs.min()
    out[positive] = 1.0 - logs / m if m < 0 else 1.0
    return out


def test_scaler_matches_float64_reference_on_random_causal_patterns():
    patterns = causal_patterns(16, 48, seed=3)
    patterns[2] = torch.eye(48)  # every nonzero entry is 1: m = 0
    patterns[5, 10:, :] = 0.0  # underflowed rows
    patterns[5, 10:, 0] = 1.0
    scaled = log_normalize(patterns)
    for i in range(patterns.shape[0]):
        expected = reference_log_normalize(patterns[i].double().numpy())
        np.testing.assert_allclose(scaled[i].numpy(), expected, rtol=0, atol=2e-6)
    assert float(scaled.min()) == 0.0 and float(scaled.max()) == 1.0
    assert torch.all(scaled.triu(1) == 0)


def test_pooling_keeps_causality_and_row_mass():
    patterns = causal_patterns(4, 64, seed=1)
    pooled = pool_patterns(patterns, 4)
    assert pooled.shape == (4, 16, 16)
    assert torch.all(pooled.triu(1) == 0)
    torch.testing.assert_close(pooled.sum(-1), torch.full((4, 16), 0.25))


def test_prepare_pads_short_patterns():
    images = prepare_patterns(causal_patterns(2, 20), source_length=32, max_length=32)
    assert images.shape == (2, 32, 32)
    assert torch.all(images[:, 20:] == 0) and torch.all(images[:, :, 20:] == 0)


# -- masking and loss -------------------------------------------------------------------------------


def test_masking_never_selects_an_upper_triangle_patch():
    model = APMAE(APMAEConfig.smollm2_default())
    grid = model.config.grid_size
    lower = set(lower_patch_ids(grid).tolist())
    assert len(lower) == 36 and all((i // grid) >= (i % grid) for i in lower)
    visible, masked = model.random_masking(2000, torch.Generator().manual_seed(0))
    assert masked.shape == (2000, 18) and visible.shape == (2000, 18)
    for v, m in zip(visible.tolist(), masked.tolist(), strict=True):
        assert set(v) | set(m) == lower and not set(v) & set(m)
    # every lower patch does get masked sometimes
    assert set(masked.flatten().tolist()) == lower


def test_loss_ignores_visible_and_upper_patches():
    model = tiny()
    images = log_normalize(causal_patterns(4, 32))
    visible, masked = model.random_masking(4, torch.Generator().manual_seed(1))
    pred = torch.rand(4, masked.shape[1], 64)
    base = model.forward_loss(images, pred, masked)
    patches = model.patchify(images)
    changed = patches.clone()
    changed.scatter_(1, visible.unsqueeze(-1).expand(-1, -1, 64), 7.0)
    upper = torch.tensor([i for i in range(16) if i not in set(lower_patch_ids(4).tolist())])
    changed[:, upper] = -3.0
    assert torch.equal(model.forward_loss(model.unpatchify(changed), pred, masked), base)
    changed.scatter_(1, masked[:, :1].unsqueeze(-1).expand(-1, -1, 64), 7.0)
    assert model.forward_loss(model.unpatchify(changed), pred, masked) > base


@pytest.mark.parametrize(("mode", "reaches_decoder"), [("paper", False), ("mae", True)])
def test_visible_encoder_outputs_reach_the_decoder_only_in_mae_mode(mode, reaches_decoder):
    model = tiny(mode).eval()
    images = log_normalize(causal_patterns(3, 32))
    visible, masked = model.random_masking(3, torch.Generator().manual_seed(2))
    with torch.no_grad():
        latent = model.forward_encoder(images, visible)
        before = model.forward_decoder(latent, visible, masked)
        edited = latent.clone()
        edited[:, 1:] += torch.randn_like(edited[:, 1:])
        after = model.forward_decoder(edited, visible, masked)
        edited_cls = latent.clone()
        edited_cls[:, 0] += 1.0
        cls_changed = model.forward_decoder(edited_cls, visible, masked)
    assert (not torch.equal(before, after)) is reaches_decoder
    assert not torch.equal(before, cls_changed)  # the CLS vector reaches the decoder in both modes


@pytest.mark.parametrize("mode", ["mae", "paper"])
def test_tiny_model_overfits_one_batch(mode):
    model = tiny(mode, seed=0)
    images = log_normalize(causal_patterns(8, 32, seed=4))
    visible, masked = model.random_masking(8, torch.Generator().manual_seed(5))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.0)
    first = None
    for _ in range(150):
        loss = model(images, visible, masked).loss
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = float(model(images, visible, masked).loss.detach())
    assert final < first / 10, (first, final)


# -- save / load ------------------------------------------------------------------------------------


def test_save_load_round_trip_gives_bit_identical_embeddings(tmp_path: Path):
    model = tiny("paper", seed=7).eval()
    patterns = causal_patterns(6, 32, seed=8)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_apmae(tmp_path / "ckpt", "cpu")
    assert loaded.config.decoder_mode == "paper" and loaded.config.source_length == 32
    assert torch.equal(model.embed(patterns), loaded.embed(patterns))
    assert not loaded.training
    as_mae = load_apmae(tmp_path / "ckpt", "cpu", decoder_mode="mae")
    assert as_mae.config.decoder_mode == "mae"


def test_a_released_style_config_loads_in_paper_mode(tmp_path: Path):
    import json

    tiny("mae").save_pretrained(tmp_path / "released")
    config_path = tmp_path / "released" / "config.json"
    config = json.loads(config_path.read_text())
    for ours in ("decoder_mode", "source_length"):
        del config[ours]  # the released config.json has neither field
    config_path.write_text(json.dumps(config))
    loaded = load_apmae(tmp_path / "released", "cpu")
    assert loaded.config.decoder_mode == "paper" and loaded.config.source_length == loaded.config.max_length


def test_load_from_settings_and_missing_checkpoint(tmp_path: Path, settings):
    tiny().save_pretrained(tmp_path / "ckpt")
    chosen = settings.model_copy(
        update={"apmae": settings.apmae.model_copy(update={"checkpoint": str(tmp_path / "ckpt")})}
    )
    assert load_apmae(chosen).config.max_length == 32
    with pytest.raises(ModelUnavailable, match="train-apmae"):
        load_apmae(tmp_path / "nothing", "cpu")


# -- the released configuration ---------------------------------------------------------------------


def test_released_configuration_parameter_count_and_names():
    with torch.device("meta"):
        model = APMAE(APMAEConfig.released())
    assert model.config.decoder_mode == "paper"
    shapes = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    assert sum(p.numel() for p in model.parameters()) == 127_115_776  # "127M params" on the model card
    assert len(shapes) == 368
    assert shapes["encoder.pos_embedding"] == (1, 65, 512)
    assert shapes["encoder.cls_token"] == (1, 1, 512)
    assert shapes["encoder.patches_to_embedding.0.weight"] == (1024,)
    assert shapes["encoder.patches_to_embedding.1.weight"] == (512, 1024)
    assert shapes["encoder.patches_to_embedding.2.weight"] == (512,)
    assert shapes["encoder.transformer.layers.23.0.to_qkv.weight"] == (3072, 512)
    assert "encoder.transformer.layers.23.0.to_qkv.bias" not in shapes  # qkv_bias=False
    assert shapes["encoder.transformer.layers.23.0.to_out.0.weight"] == (512, 1024)
    assert shapes["encoder.transformer.layers.23.1.net.1.weight"] == (2048, 512)
    assert shapes["encoder.transformer.layers.23.1.net.4.weight"] == (512, 2048)
    assert shapes["encoder.transformer.norm.weight"] == (512,)
    assert shapes["decoder.mask_token"] == (512,)
    assert shapes["decoder.pos_embedding"] == (1, 65, 512)
    assert shapes["decoder.to_pixels.weight"] == (1024, 512)
    assert shapes["decoder.transformer.layers.7.0.to_qkv.weight"] == (1536, 512)
    assert "decoder.transformer.layers.8.0.norm.weight" not in shapes
    assert not any(name.startswith("decoder.enc_to_dec") for name in shapes)  # Identity at equal widths
