"""Click-to-ablate, side by side: plain greedy decoding (the code before drafts) against decoding that checks
a draft first (the build's stored completion for the baseline, the baseline's completion for the ablated
model), on the same inferences and heads, alternating per inference; and how often the two agree.

    .venv/bin/python benchmarks/bench_ablation.py --data-dir /work/realatlas [--n 30] [--tokens 16]

For each of `n` random mined inferences of the atlas and 3 random heads, in the order before / after (or
after / before on odd inferences, so that drift hits both alike), times:
  first   the first ablation of an inference: baseline + ablated completion (no cached baseline);
  again   an ablation of 3 other heads once the baseline is cached: the ablated completion only.
Agreement: whether both paths give the same baseline and ablated token ids, and the largest difference of
the next-token logits at the hole. The model call only (no HTTP, no database write); one thread, as the
worker runs it. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from bench_api import percentile
from sqlalchemy import select

from attnlens.atlas.intervene import ablate_and_regenerate
from attnlens.config import Settings
from attnlens.heads import HeadRef
from attnlens.model import Generation, TargetModel
from attnlens.store import open_store
from attnlens.store.codecs import unpack_token_ids
from attnlens.store.inferences import prompt_ids_of
from attnlens.store.models import PASTED, Inference


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def summary(times: list[float]) -> dict[str, float]:
    return {
        "p50_s": statistics.median(times),
        "p95_s": percentile(times, 0.95),
        "min_s": min(times),
        "max_s": max(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=30, help="inferences")
    parser.add_argument("--tokens", type=int, default=16, help="new tokens per completion")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    settings = Settings(data_dir=args.data_dir)
    store = open_store(settings)
    model = TargetModel.from_settings(settings)
    rng = random.Random(args.seed)
    with store.session() as session:
        ids = session.scalars(
            select(Inference.id).where(Inference.model_name == model.info.name, Inference.source != PASTED)
        ).all()
        chosen = rng.sample(list(ids), min(args.n, len(ids)))
        rows = [
            (prompt_ids_of(inf), unpack_token_ids(inf.completion_ids))
            for inf in (session.get(Inference, i) for i in chosen)
            if inf is not None
        ]
    n_layers, n_heads = model.info.n_layers, model.info.n_heads

    def heads() -> list[HeadRef]:
        return [HeadRef(layer, head) for layer, head in rng.sample(
            [(la, h) for la in range(n_layers) for h in range(n_heads)], 3)]  # fmt: skip

    model.generate(rows[0][0], args.tokens)  # warm-up
    times: dict[str, list[float]] = {
        name: [] for name in ("before_first", "after_first", "before_again", "after_again")
    }
    same_baseline = same_ablated = same_again = 0
    logit_gap = 0.0
    draft_right = []
    for index, (prompt, stored) in enumerate(rows):
        first, again = heads(), heads()

        def before(first=first, again=again, prompt=prompt) -> tuple[object, object]:
            t1, outcome = timed(lambda: ablate_and_regenerate_plain(model, prompt, first, args.tokens))
            times["before_first"].append(t1)
            base: Generation = outcome[0]
            t2, repeat = timed(lambda: model.generate(prompt, args.tokens, ablate=again))
            times["before_again"].append(t2)
            return outcome, (base, repeat)

        def after(first=first, again=again, prompt=prompt, stored=stored) -> tuple[object, object]:
            def drafted() -> tuple[Generation, object]:
                base = model.generate(prompt, args.tokens, draft=stored)
                return base, ablate_and_regenerate(model, prompt, first, max_new_tokens=args.tokens,
                                                   baseline=base)  # fmt: skip

            t1, outcome = timed(drafted)
            times["after_first"].append(t1)
            base = outcome[0]
            t2, repeat = timed(lambda: model.generate(prompt, args.tokens, ablate=again, draft=base.new_ids))
            times["after_again"].append(t2)
            return outcome, (base, repeat)

        if index % 2 == 0:
            old, new = before(), after()
        else:
            new, old = after(), before()
        (old_base, old_ablated), (_, old_again) = old
        (new_base, new_outcome), (_, new_again) = new
        same_baseline += old_base.new_ids == new_base.new_ids
        same_ablated += old_ablated.new_ids == new_outcome.ablated_ids
        same_again += old_again.new_ids == new_again.new_ids
        logit_gap = max(logit_gap, float((old_base.first_logits - new_base.first_logits).abs().max()))
        draft_right.append(sum(1 for a, b in zip(stored, new_base.new_ids, strict=False) if a == b))
        print(f"{index + 1}/{len(rows)}", {k: round(v[-1], 3) for k, v in times.items()}, flush=True)

    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },  # fmt: skip
        "model": model.info.name,
        "inferences": len(rows),
        "new_tokens": args.tokens,
        "times": {name: summary(values) for name, values in times.items()},
        "agreement": {
            "same_baseline_ids": f"{same_baseline}/{len(rows)}",
            "same_ablated_ids": f"{same_ablated}/{len(rows)}",
            "same_repeat_ids": f"{same_again}/{len(rows)}",
            "max_abs_first_logit_difference": logit_gap,
            "stored_completion_tokens_matching_baseline_median": statistics.median(draft_right),
        },
    }
    print(json.dumps(result, indent=2))


def ablate_and_regenerate_plain(
    model: TargetModel, prompt: list[int], heads: list[HeadRef], tokens: int
) -> tuple[Generation, Generation]:
    """What an ablation ran before drafts: two plain greedy generations."""
    return model.generate(prompt, tokens), model.generate(prompt, tokens, ablate=heads)


if __name__ == "__main__":
    main()
