"""AP-MAE embedding speed: head patterns embedded per second, from raw 256x256 attention probabilities
(scaling included), for one SmolLM2 inference (270 heads) at a time.

Configurations: the shipped default checkpoint, the same architecture without pooling (256x256 input,
patch 32; random weights), and the paper-size configuration (127 M parameters; random weights).

    .venv/bin/python benchmarks/bench_apmae.py [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from attnlens.apmae import APMAE, APMAEConfig
from attnlens.apmae.load import DEFAULT_CHECKPOINT, load_apmae


def causal_patterns(batch: int, n: int) -> torch.Tensor:
    logits = torch.randn(batch, n, n) * 3
    logits = logits.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return logits.softmax(dim=-1)


def seconds_per_call(model: APMAE, patterns: torch.Tensor, repeats: int) -> list[float]:
    model.embed(patterns)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.embed(patterns)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--heads", type=int, default=270, help="patterns per call (SmolLM2: 30 x 9)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    patterns = causal_patterns(args.heads, 256)
    default = (
        load_apmae(DEFAULT_CHECKPOINT, "cpu")
        if (DEFAULT_CHECKPOINT / "model.safetensors").is_file()
        else APMAE(APMAEConfig.smollm2_default()).eval()
    )
    unpooled = APMAEConfig(**{**default.config.to_dict(), "max_length": 256, "patch_size": 32})
    candidates = {
        "default (64x64 pooled, patch 8)": default,
        "default sizes, no pooling (256x256, patch 32)": APMAE(unpooled).eval(),
        "paper size (256x256, patch 32, 127 M params)": APMAE(APMAEConfig.released()).eval(),
    }
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
        "threads"
    )
    print(f"{args.heads} raw 256x256 patterns per call, scaling included, best/median of {args.repeats}")
    for name, model in candidates.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        times = seconds_per_call(model, patterns, args.repeats)
        best, median = min(times), statistics.median(times)
        print(
            f"{name:<48} {params:7.2f} M params  {best:7.3f} s best  {median:7.3f} s median  "
            f"{args.heads / median:8.0f} patterns/s (median)"
        )


if __name__ == "__main__":
    main()
