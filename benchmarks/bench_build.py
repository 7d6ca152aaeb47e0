"""Atlas build throughput: our pipeline vs a reference-style procedure on the same scenarios, side by side
in one run, plus the target model's forward alone.

Reference-style (what the released AP-MAE code does): batch 1, per-head scaling in a Python loop, the
encoder fed all patches (upper-triangle zeros included), one database insert (and commit) per row.
Ours: batched capture with KV-cache continuations, vectorised scaling, lower-triangle patches only,
one transaction per inference.

    .venv/bin/python benchmarks/bench_build.py --scenarios 24 [--checkpoint default] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from attnlens.apmae.load import load_apmae
from attnlens.atlas.build import write_processed
from attnlens.atlas.patterns import pattern_stats, thumbnails
from attnlens.atlas.process import process_batch
from attnlens.config import Settings
from attnlens.contracts.head_scores import SCORE_NAMES
from attnlens.heads import HeadRef
from attnlens.mining import iter_corpus, mine_scenarios
from attnlens.model import TargetModel
from attnlens.store import open_store
from attnlens.store.patterns import save_head_patterns, save_inference

ROOT = Path(__file__).resolve().parents[1]
JDK = "/usr/lib/jvm/openjdk-17/lib/src.zip"


def reference_style(model, apmae, scenarios, store) -> None:
    heads = [HeadRef(layer, h) for layer in range(model.info.n_layers) for h in range(model.info.n_heads)]
    all_patches = torch.arange(apmae.config.num_patches, device=apmae.device)
    for s in scenarios:
        capture = model.capture([s.prompt_ids])  # batch 1
        pattern = capture.pattern(0).reshape(len(heads), *capture.pattern(0).shape[-2:])
        images = torch.cat([apmae.prepare(pattern[i : i + 1]) for i in range(len(heads))])  # per-head loop
        with torch.inference_mode():
            vectors = (
                apmae.forward_encoder(images, all_patches.expand(len(heads), -1))[:, 0].float().cpu().numpy()
            )
        generation = model.generate(s.prompt_ids, max_new_tokens=len(s.target_ids))  # a second prefill
        thumbs, stats = thumbnails(pattern), pattern_stats(pattern)
        with store.session() as session:
            inference_id = save_inference(
                session, model_name=model.info.name, prompt_ids=s.prompt_ids,
                completion_ids=generation.new_ids, completion_text=generation.text,
            )  # fmt: skip
        for i, ref in enumerate(heads):  # one insert (and commit) per row
            with store.session() as session:
                save_head_patterns(
                    session,
                    inference_id,
                    [ref],
                    vectors[i : i + 1],
                    thumbs[i : i + 1],
                    {
                        name: None if (c := stats.column(name)) is None else c[i : i + 1]
                        for name in SCORE_NAMES
                    },
                )


def ours(model, apmae, scenarios, store, batch_size: int) -> None:
    from attnlens.store import save_scenarios

    with store.session() as session:
        ids = save_scenarios(session, scenarios, model_name=model.info.name)
    for start in range(0, len(scenarios), batch_size):
        chunk = scenarios[start : start + batch_size]
        results = process_batch(model, apmae.embed_with_errors, chunk)
        write_processed(
            store, model, list(zip(ids[start : start + batch_size], results, strict=True)), "bench"
        )


def jdk_scenarios(model, count: int) -> list:
    """`count` JDK scenarios of four tasks (identifiers, random, closing_bracket, string_literals), the same
    ones for a seed: the build benchmarks' shared workload."""
    files = iter_corpus(JDK, max_file_bytes=1_000_000, shuffle_seed=0)
    tasks = ["identifiers", "random", "closing_bracket", "string_literals"]
    mined = mine_scenarios(
        files, tokenizer=model.tokenizer, fim=model.info.fim, tasks=tasks, per_task=count // 4 + 1
    )
    return list(mined)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model = TargetModel.load("smollm2", models_dir=ROOT / "data" / "models", device=args.device)
    apmae = load_apmae(args.checkpoint, args.device)
    scenarios = jdk_scenarios(model, args.scenarios)
    n, n_heads = len(scenarios), model.info.n_layers * model.info.n_heads
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, device {args.device}; {n} "
        f"scenarios, {n_heads} heads each"
    )

    model.capture([scenarios[0].prompt_ids])  # warm-up
    start = time.perf_counter()
    for s in scenarios:
        model.capture([s.prompt_ids])
    forward = time.perf_counter() - start

    timings = {}
    for name, run in (("reference-style", lambda st: reference_style(model, apmae, scenarios, st)),
                      ("ours", lambda st: ours(model, apmae, scenarios, st, args.batch_size))):  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(Settings(data_dir=Path(tmp)))
            start = time.perf_counter()
            run(store)
            timings[name] = time.perf_counter() - start
    print(f"forward alone (batch 1, attentions): {forward / n:.2f} s/inference")
    for name, seconds in timings.items():
        print(
            f"{name:>16}: {seconds / n:.2f} s/inference, {60 * n / seconds:.1f} inferences/min, "
            f"{n * n_heads / seconds:.0f} head patterns/s, {seconds / forward:.2f}x the forward alone"
        )
    print(f"speed-up of ours over reference-style: {timings['reference-style'] / timings['ours']:.2f}x")


if __name__ == "__main__":
    main()
