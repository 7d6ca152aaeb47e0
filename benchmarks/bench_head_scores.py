"""What the head-type scores and the anomaly signal cost an atlas build: the relational scores (token
relations from ids and a tree-sitter parse, then a gather over every head) and the AP-MAE reconstruction
errors (a masked encode and a decode per head) against the whole per-inference build step, side by side on
the same scenarios in one run.

For each batch: the build step as the build runs it (`process_batch`: capture, AP-MAE, thumbnails, all
scores, continuation; then `write_processed` into a fresh SQLite store), and, on the same batch's captured
attention, the relational part alone (`prompt_relations` + `pattern_stats` with relations minus
`pattern_stats` without) and the errors alone (`embed_with_errors` minus `embed`). Each share is its part
over the build step.

    .venv/bin/python benchmarks/bench_head_scores.py --scenarios 48 [--runs 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_build import jdk_scenarios  # the same workload (run as a script: benchmarks/ is on the path)

from attnlens.apmae.load import load_apmae
from attnlens.apmae.model import APMAE
from attnlens.atlas.build import write_processed
from attnlens.atlas.patterns import pattern_stats
from attnlens.atlas.process import process_batch
from attnlens.config import Settings
from attnlens.mining.token_relations import prompt_relations
from attnlens.model import TargetModel
from attnlens.store import open_store, save_scenarios

ROOT = Path(__file__).resolve().parents[1]


def part_seconds(model: TargetModel, apmae: APMAE, prompts: list[list[int]]) -> tuple[float, float, float]:
    """(relations: ids + parse, scores: the gather over every head, errors: the reconstruction) summed over
    the prompts, timed on one capture of them (the build's own capture is inside process_batch)."""
    capture = model.capture(prompts)
    n = model.info.n_layers * model.info.n_heads
    relations_s = scores_s = errors_s = 0.0
    for index, prompt in enumerate(prompts):
        heads = capture.pattern(index).reshape(n, *capture.pattern(index).shape[-2:])
        start = time.perf_counter()
        relations = prompt_relations(model.tokenizer, prompt)
        relations_s += time.perf_counter() - start
        start = time.perf_counter()
        pattern_stats(heads, relations)
        with_relations = time.perf_counter() - start
        start = time.perf_counter()
        pattern_stats(heads)
        scores_s += max(0.0, with_relations - (time.perf_counter() - start))
        start = time.perf_counter()
        apmae.embed_with_errors(heads)
        with_errors = time.perf_counter() - start
        start = time.perf_counter()
        apmae.embed(heads)
        errors_s += max(0.0, with_errors - (time.perf_counter() - start))
    return relations_s, scores_s, errors_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    model = TargetModel.load("smollm2", models_dir=ROOT / "data" / "models", device="cpu")
    apmae = load_apmae("default", "cpu")
    scenarios = jdk_scenarios(model, args.scenarios)
    n = len(scenarios)
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads; {n} scenarios, "
        f"{model.info.n_patterns} heads each"
    )
    prompt_relations(model.tokenizer, scenarios[0].prompt_ids)  # warm-up: the token table and the parser
    process_batch(model, apmae.embed_with_errors, scenarios[:1])
    shares, error_shares, builds, relations, scores, errors = [], [], [], [], [], []
    for run in range(args.runs):
        build_s = relations_s = scores_s = errors_s = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(Settings(data_dir=Path(tmp)))
            with store.session() as session:
                ids = save_scenarios(session, scenarios, model_name=model.info.name)
            for first in range(0, n, args.batch_size):
                chunk = scenarios[first : first + args.batch_size]
                start = time.perf_counter()
                results = process_batch(model, apmae.embed_with_errors, chunk)
                write_processed(
                    store,
                    model,
                    list(zip(ids[first : first + args.batch_size], results, strict=True)),
                    "bench",
                )
                build_s += time.perf_counter() - start
                r, s, e = part_seconds(model, apmae, [c.prompt_ids for c in chunk])
                relations_s += r
                scores_s += s
                errors_s += e
        share = (relations_s + scores_s) / build_s
        error_shares.append(errors_s / build_s)
        errors.append(errors_s / n)
        builds.append(build_s / n)
        relations.append(relations_s / n)
        scores.append(scores_s / n)
        shares.append(share)
        print(
            f"run {run + 1}: build step {build_s / n * 1e3:.0f} ms/inference; relations "
            f"{relations_s / n * 1e3:.1f} ms, relational scores {scores_s / n * 1e3:.1f} ms; "
            f"share {100 * share:.2f}%; reconstruction errors {errors_s / n * 1e3:.1f} ms, share "
            f"{100 * errors_s / build_s:.2f}%"
        )
    relations_ms, scores_ms = statistics.median(relations) * 1e3, statistics.median(scores) * 1e3
    print(
        f"median over {args.runs} runs: build step {statistics.median(builds) * 1e3:.0f} ms/inference, "
        f"relational part {relations_ms + scores_ms:.1f} ms (relations {relations_ms:.1f}, scores "
        f"{scores_ms:.1f}); "
        f"share {100 * statistics.median(shares):.2f}% [{100 * min(shares):.2f}-{100 * max(shares):.2f}]"
    )

    print(
        f"reconstruction errors: {statistics.median(errors) * 1e3:.1f} ms/inference; share "
        f"{100 * statistics.median(error_shares):.2f}% [{100 * min(error_shares):.2f}-"
        f"{100 * max(error_shares):.2f}]"
    )


if __name__ == "__main__":
    main()
