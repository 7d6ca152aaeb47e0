"""Mining throughput on the JDK sources, and what each task yields from the first N files.

Reads the first `--files` files of the corpus in the CLI's order (a seeded shuffle), mines one scenario
per task per file (no per-task cap, so every file is mined for every task), and reports:
  * scenarios and files per second, end to end (zip read + tokenization + tree-sitter parse and query +
    selection + windows), and the time split between tokenizing and parsing;
  * per task: candidate spans, scenarios, mean target tokens, and how holes were aligned;
  * the time to the CLI's default run shape (`--per-task 50`, all 13 tasks);
  * with `--accuracy K`: first-token and greedy full-span accuracy of the model itself on K scenarios per
    task (loads the model; about 1 s per scenario for SmolLM2 on 2 cores).

    .venv/bin/python benchmarks/bench_mining.py [--corpus /usr/lib/jvm/openjdk-17/lib/src.zip]
        [--model smollm2] [--files 1000] [--context 256] [--accuracy 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from itertools import islice
from pathlib import Path

from attnlens.mining import TASKS, MiningStats, TokenTable, fim_tokens_of, iter_corpus, mine_scenarios
from attnlens.mining.java import JavaParser
from attnlens.mining.tokens import tokenize_file
from attnlens.model.loading import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
JDK = "/usr/lib/jvm/openjdk-17/lib/src.zip"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=JDK)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accuracy", type=int, default=0, help="scenarios per task to run the model on")
    args = parser.parse_args()

    table = TokenTable(load_tokenizer(args.model, models_dir=ROOT / "data" / "models"))
    fim = fim_tokens_of(table.tokenizer)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"model tokenizer: {args.model} ({'FIM' if fim else 'left-to-right'}), context {args.context}")

    # 1. End to end over the first N files, every task from every file.
    stats = MiningStats()
    files = islice(
        iter_corpus(args.corpus, max_file_bytes=1_000_000, stats=stats, shuffle_seed=args.seed), args.files
    )
    started = time.perf_counter()
    scenarios = list(
        mine_scenarios(
            files,
            tokenizer=table,
            fim=fim,
            tasks=TASKS,
            per_task=10**9,
            context_tokens=args.context,
            seed=args.seed,
            stats=stats,
        )
    )
    elapsed = time.perf_counter() - started
    n_bytes = sum(s.file_n_bytes or 0 for s in {s.file_sha256: s for s in scenarios}.values())
    print(
        f"\n{stats.files_mined} files ({n_bytes / 1e6:.1f} MB with scenarios), {len(scenarios)} scenarios in "
        f"{elapsed:.1f} s: {len(scenarios) / elapsed:.0f} scenarios/s, {stats.files_mined / elapsed:.1f} "
        "files/s"
    )
    print(stats.table(TASKS))
    aligned = Counter((s.task, s.alignment == "exact") for s in scenarios)
    print("\nholes already on a token boundary (alignment exact) per task:")
    for task in TASKS:
        total = aligned[(task, True)] + aligned[(task, False)]
        if total and task != "noise":
            print(f"  {task:<24}{aligned[(task, True)] / total:>6.0%}")

    # 2. Where the time goes, per file: tokenization vs tree-sitter parse + queries.
    java = JavaParser()
    sample = list(islice(iter_corpus(args.corpus, max_file_bytes=1_000_000, shuffle_seed=args.seed), 300))
    tokenize_s = parse_s = 0.0
    for file in sample:
        source = file.text.encode()
        t0 = time.perf_counter()
        tokenize_file(table, file.text, source)
        t1 = time.perf_counter()
        java.parse(source)
        parse_s += time.perf_counter() - t1
        tokenize_s += t1 - t0
    size = sum(len(f.text.encode()) for f in sample) / len(sample)
    print(
        f"\nper file (mean of {len(sample)}, {size / 1e3:.1f} kB): tokenize "
        f"{tokenize_s / len(sample) * 1e3:.1f} ms, parse + task queries {parse_s / len(sample) * 1e3:.1f} ms"
    )

    # 3. The CLI's shape: 13 tasks x 50 scenarios (stops reading once every task is full).
    stats50 = MiningStats()
    started = time.perf_counter()
    files = iter_corpus(args.corpus, max_file_bytes=1_000_000, stats=stats50, shuffle_seed=args.seed)
    made = sum(
        1
        for _ in mine_scenarios(
            files,
            tokenizer=table,
            fim=fim,
            tasks=TASKS,
            per_task=50,
            context_tokens=args.context,
            seed=args.seed,
            stats=stats50,
        )
    )
    print(
        f"\n--per-task 50: {made} scenarios from {stats50.files_mined} files in "
        f"{time.perf_counter() - started:.1f} s"
    )
    if args.accuracy:
        accuracy(args, table, fim)


def accuracy(args: argparse.Namespace, table: TokenTable, fim) -> None:
    """First-token and full-span accuracy of the real model on `--accuracy` scenarios per task."""
    from attnlens.mining import first_token_correct, span_correct
    from attnlens.model import TargetModel

    model = TargetModel.load(args.model, models_dir=ROOT / "data" / "models", device="cpu")
    files = iter_corpus(args.corpus, max_file_bytes=1_000_000, shuffle_seed=args.seed)
    scenarios = mine_scenarios(
        files,
        tokenizer=table,
        fim=fim,
        tasks=TASKS,
        per_task=args.accuracy,
        context_tokens=args.context,
        seed=args.seed,
    )
    first, span, total = Counter(), Counter(), Counter()
    started = time.perf_counter()
    for scenario in scenarios:
        correct_span, generation = span_correct(model, scenario)
        total[scenario.task] += 1
        first[scenario.task] += first_token_correct(generation.first_logits, scenario)
        span[scenario.task] += correct_span
    print(
        f"\n{model.info.name}: accuracy on {args.accuracy} scenarios per task "
        f"({time.perf_counter() - started:.0f} s)"
    )
    print(f"  {'task':<24}{'first token':>12}{'full span':>11}")
    for task in TASKS:
        if total[task]:
            print(f"  {task:<24}{first[task] / total[task]:>12.2f}{span[task] / total[task]:>11.2f}")


if __name__ == "__main__":
    main()
