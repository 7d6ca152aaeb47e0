"""A released AP-MAE-SC2 checkpoint by hub id: read from a real Hugging Face hub-cache layout, offline, in the
`paper` decoder mode; what happens when nothing is cached; pickle weights refused unless allowed.

Nothing here touches the network: the hub client is in offline mode and every socket connect is refused
and recorded."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from attnlens.apmae import APMAE, APMAEConfig
from attnlens.apmae.load import is_hub_id, load_apmae
from attnlens.config import Settings
from attnlens.errors import InvalidInput, ModelUnavailable

REPO_ID = "LaughingLogits/AP-MAE-SC2-3B"
COMMIT = "3f1c2a9d8b7e6f5a4c3b2a1908f7e6d5c4b3a291"  # any 40 hex digits: the snapshot's folder name

# The fields of a released config.json: our field names (APMAEConfig follows the released ones) and the
# bookkeeping save_pretrained writes, without the two fields that are ours (`decoder_mode`,
# `source_length`). The sizes are small so the test is fast; the released ones are APMAEConfig.released().
RELEASED_STYLE_CONFIG = {
    "architectures": ["APMAE"],
    "model_type": "ap_mae",
    "max_length": 32,
    "patch_size": 8,
    "mask_ratio": 0.5,
    "decoder_dim": 32,
    "decoder_layers": 1,
    "decoder_heads": 2,
    "decoder_dim_head": 16,
    "decoder_mlp_dim": 64,
    "encoder_dim": 32,
    "encoder_layers": 2,
    "encoder_heads": 2,
    "encoder_dim_head": 16,
    "encoder_mlp_dim": 64,
    "encoder_dropout": 0.0,
    "encoder_emb_dropout": 0.0,
    "encoder_pool": "cls",
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "qkv_bias": False,
    "torch_dtype": "float32",
    "transformers_version": "4.44.2",
}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def offline(monkeypatch) -> list[object]:
    """HF_HUB_OFFLINE=1 as a user sets it, and the hub client's own flag (read once, at its import); every
    socket connect fails and is recorded, so a test can assert that none was tried."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    tried: list[object] = []

    def refuse(self, address, *args, **kwargs):
        tried.append(address)
        raise OSError("network access in a test")

    def refuse_create(address, *args, **kwargs):
        tried.append(address)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse_create)
    return tried


def released_weights(seed: int = 3) -> dict[str, torch.Tensor]:
    """A state dict in the released parameter layout (APMAE uses the released names), small sizes."""
    config = APMAEConfig(**{k: v for k, v in RELEASED_STYLE_CONFIG.items() if k not in ("architectures",)})
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = APMAE(config)
    return {name: tensor.contiguous() for name, tensor in model.state_dict().items()}


def write_checkpoint(folder: Path, weights: dict[str, torch.Tensor], *, pickle: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(RELEASED_STYLE_CONFIG, indent=2))
    if pickle:
        torch.save(weights, folder / "pytorch_model.bin")
    else:
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


def write_hub_cache(hub: Path, repo_id: str, source: Path) -> Path:
    """The layout huggingface_hub writes: content-addressed blobs, a snapshot folder of relative symlinks
    named by the commit, and refs/main holding that commit. Returns the snapshot folder."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for file in sorted(source.iterdir()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / file.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


def causal_patterns(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, n, n, generator=generator) * 3
    return logits.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")).softmax(dim=-1)


def test_a_cached_released_checkpoint_loads_by_hub_id_offline_in_paper_mode(tmp_path, offline):
    weights = released_weights()
    plain = tmp_path / "plain"
    write_checkpoint(plain, weights)
    data_dir = tmp_path / "data"
    models_dir = Settings(data_dir=data_dir).models_dir
    snapshot = write_hub_cache(models_dir / "hub", REPO_ID, plain)
    assert is_hub_id(REPO_ID) and not is_hub_id(plain) and not is_hub_id("default")

    model = load_apmae(REPO_ID, "cpu", models_dir=models_dir)
    assert model.config.decoder_mode == "paper"  # its config.json has no decoder_mode: the released decoder
    assert model.config.source_length == model.config.max_length == 32
    loaded = model.state_dict()
    assert set(loaded) == set(weights) and all(torch.equal(loaded[k], weights[k]) for k in weights)

    patterns = causal_patterns(6, 32)
    embeddings = model.embed(patterns)
    assert embeddings.shape == (6, 32) and embeddings.dtype == torch.float32
    assert torch.isfinite(embeddings).all()
    assert torch.equal(embeddings, model.embed(patterns))  # deterministic
    assert torch.equal(embeddings, load_apmae(plain, "cpu").embed(patterns))  # as the folder itself loads
    assert torch.equal(embeddings, load_apmae(snapshot, "cpu").embed(patterns))
    errors = model.embed_with_errors(patterns)[1]
    assert errors.shape == (6,) and torch.isfinite(errors).all()

    # the same through Settings: ATTNLENS_APMAE__CHECKPOINT may be a hub id; the cache is <data>/models/hub
    settings = Settings(data_dir=data_dir, apmae={"checkpoint": REPO_ID, "device": "cpu"})
    assert torch.equal(load_apmae(settings).embed(patterns), embeddings)
    assert offline == []


def test_an_uncached_hub_id_offline_says_what_to_do(tmp_path, offline):
    with pytest.raises(ModelUnavailable) as caught:
        load_apmae("LaughingLogits/AP-MAE-SC2-7B", "cpu", models_dir=tmp_path / "models")
    message = caught.value.message
    assert "LaughingLogits/AP-MAE-SC2-7B" in message and str(tmp_path / "models" / "hub") in message
    assert "HF_HUB_OFFLINE" in message and "network access" in message
    assert "ATTNLENS_APMAE__CHECKPOINT" in message
    assert offline == []  # offline mode: the hub was never asked
    with pytest.raises(InvalidInput, match="models_dir"):
        load_apmae(REPO_ID, "cpu")  # library code never picks a cache folder on its own


def test_pickle_weights_are_refused_unless_allowed(tmp_path, offline):
    weights = released_weights()
    source = tmp_path / "pickled"
    write_checkpoint(source, weights, pickle=True)
    models_dir = tmp_path / "models"
    write_hub_cache(models_dir / "hub", REPO_ID, source)
    for name, kwargs in ((source, {}), (REPO_ID, {"models_dir": models_dir})):
        with pytest.raises(ModelUnavailable, match="ATTNLENS_APMAE__ALLOW_PICKLE_WEIGHTS=true"):
            load_apmae(name, "cpu", **kwargs)
    # our own file, trusted here: allowed, it loads the same weights
    model = load_apmae(REPO_ID, "cpu", models_dir=models_dir, allow_pickle_weights=True)
    assert all(torch.equal(model.state_dict()[k], weights[k]) for k in weights)
    assert model.config.decoder_mode == "paper"
    assert offline == []
