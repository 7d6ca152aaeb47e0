"""Whether a bfloat16 forward could stand in for float32 in ablations: on random mined inferences of an
atlas, how far the bf16 next-token distribution at the hole lies from fp32 (top-1 agreement, |change in
p(expected)|, KL), against the size of the effects an ablation measures (one random head ablated, fp32).

    .venv/bin/python benchmarks/check_precision.py --data-dir /work/realatlas [--n 40]

Prints one JSON object. The model is loaded once in fp32 and copied to bf16 (this CPU has AVX-512 BF16).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import statistics
from pathlib import Path

import torch
from sqlalchemy import select

from attnlens.atlas.intervene import kl_divergence
from attnlens.config import Settings
from attnlens.heads import HeadRef
from attnlens.model import TargetModel
from attnlens.store import open_store
from attnlens.store.codecs import unpack_token_ids
from attnlens.store.inferences import prompt_ids_of
from attnlens.store.models import PASTED, Inference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)
    store = open_store(settings)
    fp32 = TargetModel.from_settings(settings)
    bf16 = TargetModel(copy.deepcopy(fp32.model).to(torch.bfloat16), fp32.tokenizer, name=fp32.info.name)
    rng = random.Random(args.seed)
    with store.session() as session:
        ids = session.scalars(select(Inference.id).where(Inference.source != PASTED)).all()
        rows = []
        for inference in (session.get(Inference, i) for i in rng.sample(list(ids), min(args.n, len(ids)))):
            if inference is not None and inference.scenario is not None:
                rows.append((prompt_ids_of(inference), unpack_token_ids(inference.scenario.target_ids)[0]))
    agree, precision_dp, precision_kl, head_dp = 0, [], [], []
    for prompt, expected in rows:
        full, half = fp32.next_token_logits(prompt), bf16.next_token_logits(prompt)
        p_full = float(torch.softmax(full.double(), -1)[expected])
        agree += int(full.argmax()) == int(half.argmax())
        precision_dp.append(abs(p_full - float(torch.softmax(half.double(), -1)[expected])))
        precision_kl.append(kl_divergence(full, half))
        head = HeadRef(rng.randrange(fp32.info.n_layers), rng.randrange(fp32.info.n_heads))
        ablated = fp32.next_token_logits(prompt, ablate=[head])
        head_dp.append(abs(float(torch.softmax(ablated.double(), -1)[expected]) - p_full))
    median_error = statistics.median(precision_dp)
    below = sum(x < median_error for x in head_dp) / len(rows)
    print(json.dumps({
        "machine": {"platform": platform.platform(), "torch": torch.__version__},
        "model": fp32.info.name, "inferences": len(rows),
        "top1_agreement": f"{agree}/{len(rows)}",
        "bf16_abs_dp_expected": {"median": median_error, "max": max(precision_dp)},
        "bf16_kl": {"median": statistics.median(precision_kl), "max": max(precision_kl)},
        "one_head_abs_dp_expected_fp32": {"median": statistics.median(head_dp), "max": max(head_dp)},
        "share_of_one_head_effects_below_bf16_median_error": below,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
