r"""Analysis timings: per-head clustering (UMAP + HDBSCAN) at 1,000 and 10,000 points of 64/128-d
embeddings, and predictor cross-validation for 1,000 rows x 270 heads (SmolLM2's head count).

    nice -n 10 .venv/bin/python benchmarks/bench_analysis.py \
        [--points 1000 10000] [--dims 64 128] [--skip-predictors]

Data are synthetic with cluster structure (directional blobs plus scattered points), since timings depend
on the number of points and dimensions, not on what the patterns mean.

    nice -n 10 .venv/bin/python benchmarks/bench_analysis.py \
        --real-smollm2 800 --skip-clustering --skip-predictors

compares the two predictor kinds on REAL data instead: SmolLM2 next-token correctness at random points of
JDK sources (256 tokens of left context), each head's pattern pooled to 16x16 log-attention blocks (the
lower triangle, 136 numbers) as a stand-in for its AP-MAE embedding, per-head clusters from those.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from attnlens.analysis import cross_validate_predictor
from attnlens.analysis.clustering import cluster_head, hdbscan_labels, jitter_duplicates, reduce_with_umap
from attnlens.config import AnalysisSettings
from attnlens.heads import HeadRef


def head_embeddings(n: int, dim: int, seed: int) -> np.ndarray:
    """10 directional blobs of uneven size plus 10% scattered points."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(10, dim))
    sizes = rng.dirichlet(np.ones(10)) * 0.9 * n
    labels = rng.choice(10, size=n, p=sizes / sizes.sum())
    x = directions[labels] + rng.normal(0, 0.3, size=(n, dim))
    scattered = rng.random(n) < 0.1
    x[scattered] = rng.normal(size=(int(scattered.sum()), dim))
    return x.astype(np.float32)


def bench_clustering(points: list[int], dims: list[int], settings: AnalysisSettings) -> None:
    # Numba compiles on first use, once per process: UMAP's own code on any first call, and pynndescent's
    # approximate neighbour search on the first call with more than 4,096 points.
    for n in (200, 5000):
        start = time.perf_counter()
        cluster_head(head_embeddings(n, 16, 0), settings)
        print(
            f"- warm-up call with {n} points x 16-d (includes numba compilation): "
            f"{time.perf_counter() - start:.1f} s"
        )
    for n in points:
        for dim in dims:
            x = head_embeddings(n, dim, seed=n + dim)
            start = time.perf_counter()
            reduced = reduce_with_umap(
                jitter_duplicates(x, settings.dedup_jitter, np.random.default_rng(0)), settings
            )
            umap_s = time.perf_counter() - start
            start = time.perf_counter()
            labels = hdbscan_labels(reduced, settings)
            hdbscan_s = time.perf_counter() - start
            start = time.perf_counter()
            result = cluster_head(x, settings)
            total_s = time.perf_counter() - start
            assert np.array_equal(result.labels, labels)
            print(
                f"- {n:>6} points x {dim:>3}-d: cluster_head {total_s:.1f} s (UMAP {umap_s:.1f} s, HDBSCAN "
                f"{hdbscan_s:.2f} s); {result.n_clusters} clusters, {result.noise_fraction:.0%} noise"
            )


def predictor_task(rows: int, n_layers: int, n_heads: int, dim: int, seed: int):
    """Per-head cluster ids (2-6 clusters a head) and embeddings; correctness depends on 3 heads."""
    rng = np.random.default_rng(seed)
    heads = [HeadRef(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    n_clusters = rng.integers(2, 7, size=len(heads))
    ids = (rng.random((rows, len(heads))) * n_clusters).astype(np.int64)
    centres = rng.normal(size=(len(heads), 6, dim)) * 2
    embeddings = centres[np.arange(len(heads))[None, :], ids] + rng.normal(
        0, 0.5, size=(rows, len(heads), dim)
    )
    logit = 1.2 * ((ids[:, 3] == 0).astype(float) - (ids[:, 40] == 1) + (ids[:, 200] == 0)) - 0.2
    correct = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return heads, ids, embeddings.astype(np.float32), correct


def bench_predictors(settings: AnalysisSettings, dim: int, kinds: list[str]) -> None:
    heads, ids, embeddings, correct = predictor_task(1000, 30, 9, dim, seed=0)
    for kind, features in (("clusters_catboost", ids), ("embeddings_pca_logreg", embeddings)):
        if kind not in kinds:
            continue
        for control in (False, True):
            start = time.perf_counter()
            evaluation = cross_validate_predictor(
                kind, features, correct, heads, settings, shuffled_control=control
            )
            seconds = time.perf_counter() - start
            extra = ", with the shuffled-label control (2x the fits)" if control else ""
            print(
                f"- {kind}: {settings.cv_folds}-fold CV of 1000 rows x {len(heads)} heads"
                f"{f' x {dim}-d' if kind != 'clusters_catboost' else ''}{extra}: {seconds:.1f} s; "
                f"accuracy {evaluation.accuracy.estimate:.3f} [{evaluation.accuracy.low:.3f}, "
                f"{evaluation.accuracy.high:.3f}]"
                + (f", rounds per fold {evaluation.rounds}" if evaluation.rounds else "")
            )


def real_smollm2_rows(rows: int, seed: int) -> tuple[list[HeadRef], np.ndarray, np.ndarray]:
    """(heads, pooled patterns (rows, head, 136), next-token correct (rows,)) from SmolLM2 on JDK sources,
    balanced 50/50 by dropping surplus rows of the larger class."""
    import zipfile
    from pathlib import Path

    import torch

    from attnlens.model import TargetModel

    root = Path(__file__).resolve().parents[1]
    model = TargetModel.load("smollm2", models_dir=root / "data" / "models", device="cpu")
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile("/usr/lib/jvm/openjdk-17/lib/src.zip") as archive:
        names = [n for n in archive.namelist() if n.endswith(".java")]
        order = rng.permutation(len(names))
        windows: list[list[int]] = []
        targets: list[int] = []
        for i in order:
            ids = model.encode(archive.read(names[i]).decode("utf-8", errors="replace"))
            if len(ids) < 600:
                continue
            start = int(rng.integers(0, len(ids) - 257))
            windows.append(ids[start : start + 256])
            targets.append(ids[start + 256])
            if len(windows) == 3 * rows:
                break
    features, correct = [], []
    blocks = 16
    lower = np.tril_indices(blocks)
    for b in range(0, len(windows), 8):
        capture = model.capture(windows[b : b + 8])
        attention = capture.attention.float()  # (batch, layer, head, q, k)
        batch, layers, heads = attention.shape[:3]
        logged = torch.log(attention.clamp_min(1e-6)).reshape(batch, layers * heads, 256, 256)
        pooled = torch.nn.functional.avg_pool2d(logged, 256 // blocks)  # (batch, head, 16, 16)
        features.append(pooled[:, :, lower[0], lower[1]].numpy())
        predicted = capture.last_logits.argmax(dim=-1).tolist()
        correct += [p == t for p, t in zip(predicted, targets[b : b + 8], strict=True)]
        if min(sum(correct), len(correct) - sum(correct)) >= rows // 2:
            break
    x = np.concatenate(features)
    y = np.array(correct)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: rows // 2] for c in (True, False)])
    keep.sort()
    refs = [
        HeadRef(layer, head) for layer in range(model.info.n_layers) for head in range(model.info.n_heads)
    ]
    return refs, x[keep].astype(np.float32), y[keep]


def saved_heads(n: int) -> list[str]:
    """SmolLM2's head names in layer-major order (30 layers x 9 heads)."""
    return [f"L{i // 9}H{i % 9}" for i in range(n)]


def bench_real(rows: int, settings: AnalysisSettings, cache: str | None) -> None:
    """Predictor comparison on real rows; `cache` (an .npz path) keeps the rows and clusters for reruns."""
    from pathlib import Path

    from attnlens.analysis import cluster_heads

    if cache and Path(cache).exists():
        with np.load(cache) as saved:
            embeddings, correct, ids = saved["embeddings"], saved["correct"], saved["cluster_ids"]
        heads = [HeadRef.parse(name) for name in saved_heads(embeddings.shape[1])]
        print(
            f"- real rows from {cache}: {len(correct)} ({int(correct.sum())} correct), features "
            f"{embeddings.shape}"
        )
    else:
        start = time.perf_counter()
        heads, embeddings, correct = real_smollm2_rows(rows, settings.seed)
        print(
            f"- real rows: {len(correct)} ({int(correct.sum())} correct), features {embeddings.shape}; "
            f"{time.perf_counter() - start:.0f} s"
        )
        start = time.perf_counter()
        ids = np.stack([r.labels for r in cluster_heads(embeddings, heads, settings)], axis=1)
        print(f"- clustered {len(heads)} heads in {time.perf_counter() - start:.0f} s")
        if cache:
            np.savez(cache, embeddings=embeddings, correct=correct, cluster_ids=ids)
    clustered = float(np.mean(ids != -1))
    n_clusters = [len(set(col.tolist()) - {-1}) for col in ids.T]
    print(
        f"- {clustered:.0%} of patterns in a cluster, "
        f"clusters per head median {int(np.median(n_clusters))} (max {max(n_clusters)})"
    )
    for kind, features in (("clusters_catboost", ids), ("embeddings_pca_logreg", embeddings)):
        start = time.perf_counter()
        e = cross_validate_predictor(kind, features, correct, heads, settings)
        c = e.shuffled_control
        print(
            f"- {kind}: accuracy {e.accuracy.estimate:.3f} [{e.accuracy.low:.3f}, {e.accuracy.high:.3f}] "
            f"(Wilson), AUC {e.roc_auc:.3f}, Brier {e.brier:.3f}, ECE {e.calibration_error:.3f}; "
            f"shuffled-label control accuracy {c.accuracy.estimate:.3f} [{c.accuracy.low:.3f}, "
            f"{c.accuracy.high:.3f}], AUC {c.roc_auc:.3f}; {time.perf_counter() - start:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--predictor-dim", type=int, default=64)
    parser.add_argument("--skip-clustering", action="store_true")
    parser.add_argument("--skip-predictors", action="store_true")
    parser.add_argument("--kinds", nargs="+", default=["clusters_catboost", "embeddings_pca_logreg"])
    parser.add_argument(
        "--real-smollm2", type=int, default=0, metavar="ROWS", help="also compare predictors on real data"
    )
    parser.add_argument(
        "--real-cache", default=None, help=".npz to keep (or reuse) the real rows and their clusters"
    )
    args = parser.parse_args()
    settings = AnalysisSettings()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; settings: defaults")
    if not args.skip_clustering:
        bench_clustering(args.points, args.dims, settings)
    if not args.skip_predictors:
        bench_predictors(settings, args.predictor_dim, args.kinds)
    if args.real_smollm2:
        bench_real(args.real_smollm2, settings, args.real_cache)


if __name__ == "__main__":
    main()
