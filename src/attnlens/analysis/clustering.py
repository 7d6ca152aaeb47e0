"""Per-head clustering of pattern embeddings, the paper's way: UMAP to a few dimensions, then HDBSCAN.

Each head is clustered on its own, so cluster ids are local to a head (cluster 3 of L0H1 has nothing
to do with cluster 3 of L5H2). Label -1 is noise. Steps, per head:
1. de-duplicate with a small Gaussian jitter (UMAP misbehaves on exact duplicates);
2. UMAP (default 8-d, n_neighbors 20, min_dist 0.05, cosine) with a fixed seed;
3. HDBSCAN (default min_samples 20, min_cluster_size 25, a single cluster allowed);
4. per cluster: its medoid (in the original embedding space) and the counts of categorical attributes.

UMAP compiles with numba on first use in a process (11-15 s, about a minute cold): call this in jobs.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from attnlens.config import AnalysisSettings
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef

NOISE = -1
JITTER_ATTEMPTS = 3
JITTER_GROWTH = 5.0


@dataclass(frozen=True)
class ClusterSummary:
    """One cluster of one head (label -1 summarises the noise points)."""

    label: int
    size: int
    medoid: int | None  # row index into the head's embeddings; None for noise
    attributes: dict[str, dict[str, int]]  # attribute name -> value -> count among the members


@dataclass(frozen=True)
class HeadClustering:
    """The clustering of one head's embeddings."""

    head: HeadRef | None
    labels: np.ndarray  # (n,) int64, -1 = noise
    clusters: list[ClusterSummary]  # real clusters by label, then the noise summary if there is noise
    reason: str | None = None  # set when every point is noise because clustering could not run

    @property
    def n_clusters(self) -> int:
        return sum(1 for c in self.clusters if c.label != NOISE)

    @property
    def noise_fraction(self) -> float:
        return float(np.mean(self.labels == NOISE)) if self.labels.size else 1.0


def duplicate_rows(embeddings: np.ndarray) -> np.ndarray:
    """Mask of rows equal to an earlier row (the first occurrence is not marked)."""
    _, first = np.unique(embeddings, axis=0, return_index=True)
    mask = np.ones(len(embeddings), dtype=bool)
    mask[first] = False
    return mask


def jitter_duplicates(embeddings: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A copy where no two rows are equal: the paper's scheme.

    Duplicates get Gaussian noise of std `scale`, growing x5 per retry for 3 attempts; if duplicates still
    remain (values so large that the noise vanishes in float32), every row gets noise.
    """
    out = np.array(embeddings, dtype=np.float32, copy=True)
    for attempt in range(JITTER_ATTEMPTS):
        dup = duplicate_rows(out)
        if not dup.any():
            return out
        out[dup] += rng.normal(0.0, scale * JITTER_GROWTH**attempt, size=(int(dup.sum()), out.shape[1]))
    if duplicate_rows(out).any():
        # Last resort: noise on every row, at least a few float32 steps of the largest value so it cannot
        # vanish in rounding (the paper's fixed scale does at large magnitudes).
        std = max(scale * JITTER_GROWTH**JITTER_ATTEMPTS, 1e-5 * float(np.abs(out).max()))
        out += rng.normal(0.0, std, size=out.shape).astype(np.float32)
    return out


def cluster_medoids(embeddings: np.ndarray, labels: np.ndarray, metric: str = "cosine") -> dict[int, int]:
    """Per cluster label (noise excluded), the row index of the member with the least total distance to
    the other members.

    For cosine distance this is exact in O(n d): sum_j (1 - u_i . u_j) = m - u_i . sum_j u_j, so the medoid
    is the member best aligned with the members' summed unit vector. Other metrics use chunked pairwise
    distances within each cluster.
    """
    medoids: dict[int, int] = {}
    for label in np.unique(labels):
        if label == NOISE:
            continue
        members = np.flatnonzero(labels == label)
        x = embeddings[members].astype(np.float64)
        if metric == "cosine":
            unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            medoids[int(label)] = int(members[np.argmax(unit @ unit.sum(axis=0))])
        else:
            from sklearn.metrics import pairwise_distances_chunked

            totals = np.concatenate([d.sum(axis=1) for d in pairwise_distances_chunked(x, metric=metric)])
            medoids[int(label)] = int(members[np.argmin(totals)])
    return medoids


def attribute_counts(
    labels: np.ndarray, attributes: Mapping[str, Sequence[object]]
) -> dict[int, dict[str, dict[str, int]]]:
    """Per label (noise included): for each attribute (e.g. task, syntax node type), value -> count."""
    n = len(labels)
    for name, values in attributes.items():
        if len(values) != n:
            raise InvalidInput(
                f"attribute {name!r} has {len(values)} values for {n} embeddings; give one per row."
            )
    out: dict[int, dict[str, dict[str, int]]] = {}
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        out[int(label)] = {
            name: dict(Counter(str(values[int(i)]) for i in members).most_common())
            for name, values in attributes.items()
        }
    return out


def minimum_points(settings: AnalysisSettings) -> int:
    """Fewest points a head needs for UMAP + HDBSCAN to be meaningful with these settings."""
    return max(settings.hdbscan_min_cluster_size, settings.umap_neighbors + 1, settings.umap_components + 2)


def reduce_with_umap(embeddings: np.ndarray, settings: AnalysisSettings) -> np.ndarray:
    """UMAP to `umap_components` dims (float32, (n, components)); deterministic for the seed."""
    import umap

    reducer = umap.UMAP(
        n_components=settings.umap_components,
        n_neighbors=settings.umap_neighbors,
        min_dist=settings.umap_min_dist,
        metric=settings.umap_metric,
        random_state=settings.seed,
        n_jobs=1,  # a fixed random_state forces one thread anyway; saying so silences UMAP's warning
    )
    with warnings.catch_warnings():
        # Spectral initialisation falls back to random init on disconnected graphs with a warning; fine.
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(reducer.fit_transform(embeddings), dtype=np.float32)


def hdbscan_labels(points: np.ndarray, settings: AnalysisSettings) -> np.ndarray:
    """HDBSCAN labels (-1 = noise) of already reduced points, as int64."""
    from sklearn.cluster import HDBSCAN

    model = HDBSCAN(
        min_samples=settings.hdbscan_min_samples,
        min_cluster_size=settings.hdbscan_min_cluster_size,
        allow_single_cluster=settings.hdbscan_allow_single_cluster,
        copy=True,
    )
    return model.fit_predict(points).astype(np.int64)


def summarise_clusters(
    embeddings: np.ndarray,
    labels: np.ndarray,
    attributes: Mapping[str, Sequence[object]] | None,
    metric: str,
) -> list[ClusterSummary]:
    """Summaries for real clusters in label order, then noise (when there is any)."""
    medoids = cluster_medoids(embeddings, labels, metric)
    counts = attribute_counts(labels, attributes or {})
    sizes = Counter(int(x) for x in labels)
    order = sorted(label for label in sizes if label != NOISE) + ([NOISE] if NOISE in sizes else [])
    return [ClusterSummary(label, sizes[label], medoids.get(label), counts[label]) for label in order]


def cluster_head(
    embeddings: np.ndarray,
    settings: AnalysisSettings,
    *,
    attributes: Mapping[str, Sequence[object]] | None = None,
    head: HeadRef | None = None,
) -> HeadClustering:
    """Cluster one head's embeddings (n, d). `attributes` are per-row categories (e.g. `{"task": [...]}`)
    whose distribution per cluster is reported. Too few points give all-noise labels and a `reason`.
    """
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise InvalidInput(f"embeddings of one head must be a 2-D (n, d) array, got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise InvalidInput(
            "embeddings contain NaN or infinite values; re-embed those patterns before clustering."
        )
    n = len(x)
    needed = minimum_points(settings)
    if n < needed:
        labels = np.full(n, NOISE, dtype=np.int64)
        reason = (
            f"{n} points; clustering needs at least {needed} (min_cluster_size, UMAP n_neighbors + 1): "
            "all marked noise. Collect more inferences for this head."
        )
        return HeadClustering(
            head, labels, summarise_clusters(x, labels, attributes, settings.umap_metric), reason
        )
    rng = np.random.default_rng(settings.seed)
    distinct = jitter_duplicates(x, settings.dedup_jitter, rng)
    labels = hdbscan_labels(reduce_with_umap(distinct, settings), settings)
    return HeadClustering(head, labels, summarise_clusters(x, labels, attributes, settings.umap_metric))


def cluster_heads(
    embeddings: np.ndarray,
    heads: Sequence[HeadRef],
    settings: AnalysisSettings,
    *,
    attributes: Mapping[str, Sequence[object]] | None = None,
) -> Iterator[HeadClustering]:
    """Cluster every head of an (n, head, d) array in turn (a generator, so a job can report progress
    and store each head as soon as it is done)."""
    x = np.asarray(embeddings)
    if x.ndim != 3 or x.shape[1] != len(heads):
        raise InvalidInput(f"expected embeddings of shape (n, {len(heads)} heads, d), got {x.shape}.")
    for i, head in enumerate(heads):
        yield cluster_head(x[:, i, :], settings, attributes=attributes, head=head)
