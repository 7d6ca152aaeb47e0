"""Forward pass with attentions for 256-token inputs: seconds per sequence at batch 1 and batch 8, and the
ratio to the FLOP floor (2 x parameters x tokens over this machine's measured fp32 matmul rate).

    .venv/bin/python benchmarks/bench_forward.py [--model smollm2] [--device cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from attnlens.model import TargetModel

ROOT = Path(__file__).resolve().parents[1]


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Measured FLOP/s of square matmuls (the best of several runs)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()

    model = TargetModel.load(args.model, models_dir=ROOT / "data" / "models", device=args.device)
    device, dtype = model.device, model.model.dtype
    rate = matmul_rate(device, dtype)
    # Real Java tokens, so the attention patterns are realistic (the cost does not depend on it).
    text = "".join(f.read_text() for f in sorted((ROOT / "tests" / "data" / "java").rglob("*.java"))) * 4
    ids = model.encode(text)
    windows = [ids[i * 37 : i * 37 + args.tokens] for i in range(8)]
    floor_per_seq = 2 * model.info.n_params * args.tokens / rate
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, device "
        f"{device}"
    )
    print(f"model: {model.info.name}, {model.info.n_params / 1e6:.1f} M params, dtype {dtype}")
    print(
        f"measured matmul rate: {rate / 1e9:.1f} GFLOP/s; FLOP floor per {args.tokens}-token sequence: "
        f"{floor_per_seq * 1e3:.1f} ms"
    )
    for batch in (1, 8):
        seqs = windows[:batch]
        model.capture(seqs)  # warm-up
        times = []
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.capture(seqs)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - start) / batch)
        median = statistics.median(times)
        print(
            f"batch {batch}: {median * 1e3:.0f} ms per sequence (median of {args.repeats}; "
            f"min {min(times) * 1e3:.0f}), {median / floor_per_seq:.2f}x the FLOP floor"
        )


if __name__ == "__main__":
    main()
