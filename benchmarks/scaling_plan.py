"""The scaling plan's figures (docs/benchmarks.md, "Beyond one machine"), from what this machine measures
and, where no GPU was at hand, FLOP-based estimates marked as such.

Measured here, in this run:
- PostgreSQL bytes per head pattern (rows, TOAST and indexes of the head pattern, inference and scenario
  tables) after writing `--inferences` inferences of SmolLM2's shape through the store's API;
- this CPU's fp32 matmul rate (as `bench_forward.py` measures it).
Taken from earlier runs (arguments, with the defaults recorded in docs/benchmarks.md):
- seconds per inference of the local build (SmolLM2 + the shipped AP-MAE, `bench_ray_engine.py`);
- head patterns per second one writer puts into PostgreSQL (`bench_store_writes.py`);
- the IVF-PQ rebuild rate (`bench_index.py`).

Estimated: GPU time = FLOPs / (H200 bf16 dense peak x efficiency), for two efficiencies: the one this
pipeline reaches on this CPU (FLOPs per inference / (seconds x matmul rate)) and 40%.

    .venv/bin/python benchmarks/scaling_plan.py [--seconds-per-inference 1.23] [--json plan.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import text  # noqa: E402

from attnlens.apmae import APMAE, APMAEConfig  # noqa: E402
from attnlens.config import Settings  # noqa: E402
from attnlens.store import open_store  # noqa: E402
from tests.postgres_server import fresh_database, postgres_bin, start_server, stop_server  # noqa: E402

H200_BF16_DENSE = 989e12  # FLOP/s, NVIDIA's datasheet figure without sparsity
TOKENS = 256
# (name, parameters (nominal, from the model cards), layers x heads = head patterns per inference)
MODELS = [
    ("StarCoder2-3B", 3.0e9, 30 * 24),
    ("StarCoder2-7B", 7.2e9, 32 * 36),
    ("StarCoder2-15B", 16.0e9, 40 * 48),
]
SMOLLM2 = ("SmolLM2-135M", 0.135e9, 30 * 9)


def encoder_parameters(config: APMAEConfig) -> int:
    return sum(p.numel() for p in APMAE(config).encoder.parameters())


def flops_per_inference(parameters: float, patterns: int, apmae_encoder: int, tokens: int) -> float:
    """Forward of the target model over the prompt, plus AP-MAE's encoder over every head's patches."""
    return 2 * parameters * TOKENS + patterns * 2 * apmae_encoder * tokens


def postgres_bytes_per_pattern(inferences: int) -> float:
    import bench_store_writes as writes

    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("needs PostgreSQL's initdb/pg_ctl (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="plan-pg-"))
    server = start_server(folder, bin_dir, durable=True)
    try:
        url = fresh_database(server)
        data_dir = Path(tempfile.mkdtemp(prefix="plan-data-"))
        ids = writes._scenario_ids(url, data_dir, inferences)
        writes._write(url, str(data_dir), ids, 0)
        store = open_store(Settings(data_dir=data_dir, db={"url": url}))
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
            size = connection.execute(
                text(
                    "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY"
                    "['head_pattern', 'inference', 'scenario']) AS t"
                )
            ).scalar_one()
            count = connection.execute(text("SELECT count(*) FROM head_pattern")).scalar_one()
        store.dispose()
        return float(size) / count
    finally:
        stop_server(folder, bin_dir)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds-per-inference", type=float, required=True)
    parser.add_argument("--writer-patterns-per-second", type=float, required=True)
    parser.add_argument("--rebuild-seconds-per-million", type=float, default=37.5)
    parser.add_argument("--inferences", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch
    from bench_forward import matmul_rate

    rate = matmul_rate(torch.device("cpu"), torch.float32)
    released, shipped = APMAEConfig.released(), APMAEConfig.smollm2_default()
    patches = released.num_lower_patches + 1  # the patches and the class token
    smollm2_flops = flops_per_inference(SMOLLM2[1], SMOLLM2[2], encoder_parameters(shipped), patches)
    efficiency = smollm2_flops / (args.seconds_per_inference * rate)
    released_encoder = encoder_parameters(released)
    bytes_per_pattern = postgres_bytes_per_pattern(args.inferences)
    plan: dict = {
        "cpu_matmul_gflops": rate / 1e9,
        "smollm2_gflop_per_inference": smollm2_flops / 1e9,
        "cpu_efficiency": efficiency,
        "released_apmae_encoder_parameters": released_encoder,
        "postgres_bytes_per_pattern": bytes_per_pattern,
        "models": {},
    }
    for name, parameters, patterns in MODELS:
        flops = flops_per_inference(parameters, patterns, released_encoder, patches)
        per = {
            "patterns_per_inference": patterns,
            "tflop_per_inference": flops / 1e12,
            "apmae_share": (patterns * 2 * released_encoder * patches) / flops,
        }
        for label, n_inferences in (("paper_11000", 11_000), ("patterns_100M", 100_000_000 / patterns)):
            total = flops * n_inferences
            per[label] = {
                "inferences": n_inferences,
                "patterns": n_inferences * patterns,
                "gpu_hours_at_cpu_efficiency": total / (H200_BF16_DENSE * efficiency) / 3600,
                "gpu_hours_at_40pct": total / (H200_BF16_DENSE * 0.40) / 3600,
                "database_gb": n_inferences * patterns * bytes_per_pattern / 1e9,
            }
        # What one GPU makes per second at the CPU's efficiency, against what one writer puts in.
        per["patterns_per_second_per_gpu"] = patterns * H200_BF16_DENSE * efficiency / flops
        per["writers_per_gpu"] = per["patterns_per_second_per_gpu"] / args.writer_patterns_per_second
        plan["models"][name] = per
    n = 100_000_000
    nlist = 2 ** round(math.log2(4 * n**0.5))
    plan["index_100M"] = {
        "ivf_lists": nlist,
        "ivfpq_gb": n * (32 + 8) / 1e9 + nlist * 128 * 4 / 1e9,
        "flat_gb": n * (128 * 4 + 8) / 1e9,
        "rebuild_hours": n / 1e6 * args.rebuild_seconds_per_million / 3600,
        "all_ids_for_the_training_sample_gb": n * 8 / 1e9,
    }
    print(json.dumps(plan, indent=2))
    if args.json:
        args.json.write_text(json.dumps(plan, indent=2))


if __name__ == "__main__":
    main()
