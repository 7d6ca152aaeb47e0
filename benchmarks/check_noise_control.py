"""Is a `noise` control above chance a leak or luck? The embedding predictor's CV accuracy under the
alternating noise labels, against random balanced labelings of the same rows.

    # the rows of an atlas (after its analysis jobs):
    .venv/bin/python benchmarks/check_noise_control.py --data-dir data --permutations 40
    # fresh noise scenarios, run through the build's own path (batches of 4, as the demo build):
    .venv/bin/python benchmarks/check_noise_control.py --fresh 200 --permutations 10

A leak (something in the pipeline that tracks inference order) would keep the alternating labels above
the random labelings as rows grow; luck shrinks towards 0.5.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from attnlens.analysis import cross_validate_predictor
from attnlens.config import Settings
from attnlens.heads import HeadRef

JDK = "/usr/lib/jvm/openjdk-17/lib/src.zip"
# SmolLM2's 30 layers x 9 heads: the embedded model, the one the demo atlas and --fresh use.
HEADS = [HeadRef(layer, h) for layer in range(30) for h in range(9)]


def atlas_rows(data_dir: Path) -> np.ndarray:
    from attnlens.store import open_store
    from attnlens.store.analyses import latest_clustering
    from attnlens.store.analysis_rows import Selection, load_task_rows

    settings = Settings(data_dir=data_dir)
    store = open_store(settings)
    clustering = latest_clustering(store, settings.model.name)
    if clustering is None:
        raise SystemExit(f"no clustering in {data_dir}: run the analysis jobs first")
    with store.session() as session:
        rows = load_task_rows(
            session, Selection(settings.model.name, "default"), "noise", clustering.id, HEADS
        )
    return rows.embeddings


def fresh_rows(count: int, batch_size: int = 4) -> np.ndarray:
    from attnlens.apmae.load import load_apmae
    from attnlens.atlas.process import process_batch
    from attnlens.mining import iter_corpus, mine_scenarios
    from attnlens.model import TargetModel

    root = Path(__file__).resolve().parents[1]
    model = TargetModel.load("smollm2", models_dir=root / "data" / "models", device="cpu")
    apmae = load_apmae("default", "cpu")
    files = iter_corpus(JDK, max_file_bytes=1_000_000, shuffle_seed=0)
    scenarios = list(
        mine_scenarios(files, tokenizer=model.tokenizer, fim=model.info.fim, tasks=["noise"], per_task=count)
    )
    started = time.perf_counter()
    vectors = [
        r.embeddings
        for i in range(0, len(scenarios), batch_size)
        for r in process_batch(model, apmae.embed_with_errors, scenarios[i : i + batch_size])
    ]
    print(f"{len(vectors)} noise scenarios run and embedded in {time.perf_counter() - started:.0f} s")
    return np.stack(vectors).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", type=Path, help="an atlas data dir with clusters")
    source.add_argument("--fresh", type=int, help="mine and run this many noise scenarios")
    parser.add_argument("--permutations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    embeddings = atlas_rows(args.data_dir) if args.data_dir else fresh_rows(args.fresh)
    n = embeddings.shape[0]
    settings = Settings().analysis

    def accuracy(labels: np.ndarray):
        return cross_validate_predictor(
            "embeddings_pca_logreg", embeddings, labels, HEADS, settings, shuffled_control=False
        ).accuracy

    alternating = accuracy(np.arange(n) % 2 == 0)
    print(
        f"{n} rows; alternating labels: {alternating.estimate:.3f} [{alternating.low:.3f}, "
        f"{alternating.high:.3f}]"
    )
    rng = np.random.default_rng(args.seed)
    values = []
    for _ in range(args.permutations):
        labels = np.zeros(n, dtype=bool)
        labels[rng.choice(n, n // 2, replace=False)] = True
        values.append(accuracy(labels).estimate)
    v = np.asarray(values)
    print(
        f"{len(v)} random balanced labelings: mean {v.mean():.3f}, 95th percentile "
        f"{np.quantile(v, 0.95):.3f}, max {v.max():.3f}; share >= alternating "
        f"{np.mean(v >= alternating.estimate):.3f}"
    )


if __name__ == "__main__":
    main()
