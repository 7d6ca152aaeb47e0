"""No pickle anywhere: unpickling a file can run code, and attnlens reads files people copy around
(training states, model folders). Training states are safetensors + JSON; target models load from
safetensors unless `model.allow_pickle_weights` opts in, for weights the user trusts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attnlens.errors import CheckpointMismatch, ModelUnavailable
from attnlens.model import TargetModel

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "attnlens"
FORBIDDEN = {
    "torch.load": re.compile(r"\btorch\.load\("),
    "pickle": re.compile(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b|\bpickle\.", re.MULTILINE),
    "weights_only=False": re.compile(r"weights_only\s*=\s*False"),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
}


def test_no_module_of_the_package_unpickles():
    found = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name, pattern in FORBIDDEN.items()
        if pattern.search(path.read_text())
    ]
    assert found == []


@pytest.fixture(scope="module")
def pickle_only_model(tmp_path_factory) -> Path:
    """The tiny StarCoder2 saved the old way: pytorch_model.bin (a pickle), no safetensors."""
    import torch

    from attnlens.model.tiny import build_tiny_starcoder2, tiny_starcoder2_tokenizer

    folder = tmp_path_factory.mktemp("pickle-model")
    model = build_tiny_starcoder2()
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # how older checkpoints were written
    tiny_starcoder2_tokenizer().save_pretrained(folder)
    assert (folder / "pytorch_model.bin").exists() and not list(folder.glob("*.safetensors"))
    return folder


def test_a_pickle_only_model_is_refused_by_default_with_the_way_out(pickle_only_model, tmp_path):
    with pytest.raises(ModelUnavailable, match="ATTNLENS_MODEL__ALLOW_PICKLE_WEIGHTS=true"):
        TargetModel.load(str(pickle_only_model), models_dir=tmp_path, device="cpu", dtype="float32")


def test_the_opt_out_loads_trusted_pickle_weights(pickle_only_model, tmp_path):
    model = TargetModel.load(
        str(pickle_only_model), models_dir=tmp_path, device="cpu", dtype="float32", allow_pickle_weights=True
    )
    assert model.info.n_layers == 4 and model.info.n_heads == 4


def test_an_old_pickled_training_state_is_refused_not_loaded(tmp_path):
    """A run folder from before pickle-free states: resuming it would unpickle, so training refuses and
    says what to do (the file here is not even a valid pickle: it must never be opened)."""
    import torch

    from attnlens.apmae.cache import PatternSet
    from attnlens.apmae.configuration import APMAEConfig
    from attnlens.apmae.train import LEGACY_STATE, TrainPlan, train

    (tmp_path / LEGACY_STATE).write_bytes(b"not a pickle")
    config = APMAEConfig.tiny()
    n, side = 4, config.max_length
    patterns = PatternSet(
        images=torch.zeros(n, side, side, dtype=torch.float16), layer=torch.zeros(n, dtype=torch.long),
        head=torch.zeros(n, dtype=torch.long), window=torch.arange(n),
        correct=torch.ones(n, dtype=torch.bool), files=["A.java"] * n,
    )  # fmt: skip
    with pytest.raises(CheckpointMismatch, match="new --out"):
        train(config, patterns, patterns.images[:2], tmp_path, TrainPlan(steps=1), device=torch.device("cpu"))
