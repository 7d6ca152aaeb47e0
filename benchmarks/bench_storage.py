"""Bytes stored per head pattern (database + index), and what thumbnail formats would cost.

1. Thumbnails of real attention: SmolLM2 on 256-token windows of JDK sources (or the tiny random model
   with --model tiny-starcoder2), pooled by `attnlens.atlas.patterns.thumbnails` at several sizes; bytes
   of the full square, of its lower triangle (what we store), and of that triangle zlib-compressed.
2. A real SQLite atlas written through the store's API (270 head patterns per inference, 128-d float16
   embeddings, 32x32 lower-triangle thumbnails, five statistics), measured per table and index with
   SQLite's dbstat, plus the FAISS index files (flat and IVF-PQ) built from it by `rebuild_from_db`.

    nice -n 10 .venv/bin/python benchmarks/bench_storage.py [--inferences 200] [--model smollm2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from attnlens.config import Settings
from attnlens.heads import HeadRef
from attnlens.index import PatternIndex
from attnlens.store import open_store, save_scenarios
from attnlens.store.codecs import pack_thumbnail
from attnlens.store.models import ClusterAssignment, Clustering, HeadPattern, MapPoint, PatternMap
from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference

ROOT = Path(__file__).resolve().parents[1]
JDK = Path("/usr/lib/jvm/openjdk-17/lib/src.zip")
JDK_FILES = [
    "java.base/java/util/ArrayList.java",
    "java.base/java/util/HashMap.java",
    "java.base/java/lang/String.java",
]
DIM = 128


def real_thumbnails(model_name: str, windows_per_file: int) -> dict[int, np.ndarray]:
    """size -> (n, size, size) uint8 thumbnails of real attention patterns."""
    import torch

    from attnlens.atlas.patterns import thumbnails
    from attnlens.model import TargetModel

    model = TargetModel.load(model_name, models_dir=ROOT / "data" / "models", device="cpu")
    with zipfile.ZipFile(JDK) as archive:
        sources = [archive.read(name).decode("utf-8") for name in JDK_FILES]
    windows = []
    for source in sources:
        ids = model.encode(source)
        for start in np.linspace(0, len(ids) - 257, windows_per_file).astype(int):
            windows.append(ids[start : start + 256])
    out: dict[int, list[np.ndarray]] = {16: [], 24: [], 32: []}
    with torch.inference_mode():
        for window in windows:
            pattern = model.capture([window]).pattern(0)  # (layer, head, q, k)
            flat = pattern.reshape(-1, *pattern.shape[-2:])
            for size in out:
                out[size].append(thumbnails(flat, size=size))
    return {size: np.concatenate(parts) for size, parts in out.items()}


def thumbnail_formats(thumbs: dict[int, np.ndarray]) -> list[dict]:
    rows = []
    for size, images in thumbs.items():
        lower = [pack_thumbnail(image) for image in images]
        rows.append(
            {
                "size": size,
                "full_bytes": size * size,
                "lower_triangle_bytes": len(lower[0]),
                "lower_triangle_zlib_mean_bytes": float(np.mean([len(zlib.compress(b, 9)) for b in lower])),
                "patterns": len(images),
            }
        )
    return rows


def atlas_bytes(workdir: Path, n_inferences: int, thumbs32: np.ndarray) -> dict:
    settings = Settings(data_dir=workdir / "atlas", index={"flat_max_vectors": 1_000_000})
    store = open_store(settings)
    refs = [HeadRef(layer, head) for layer in range(30) for head in range(9)]
    rng = np.random.default_rng(0)

    class Scenario:  # the fields save_scenarios reads; a 256-token prompt like SmolLM2's windows
        def __init__(self, i: int) -> None:
            self.corpus, self.file_path, self.file_sha256 = "jdk17", f"F{i}.java", f"{i:064x}"
            self.task, self.node_type, self.mode, self.alignment = "identifier", "identifier", "l2r", "exact"
            self.hole_start, self.hole_end, self.target_text = 100, 104, " size"
            self.target_ids, self.prompt_ids = [4242], rng.integers(0, 49152, 256).tolist()
            self.context_tokens, self.n_prefix_tokens, self.n_suffix_tokens, self.seed = 256, 256, 0, 0

    started = time.perf_counter()
    with store.session() as session:
        scenario_ids = save_scenarios(
            session, [Scenario(i) for i in range(n_inferences)], model_name="smollm2"
        )
        for scenario_id in scenario_ids:
            inference_id = save_inference(
                session,
                model_name="smollm2",
                scenario_id=scenario_id,
                completion_text=" size",
                completion_ids=[4242],
                first_token_correct=True,
                span_correct=True,
                expected_token_prob=0.5,
                embedder="default",
            )
            picks = rng.integers(0, len(thumbs32), len(refs))
            stats = {name: rng.random(len(refs)) for name in STAT_COLUMNS}
            embeddings = rng.standard_normal((len(refs), DIM)).astype(np.float32)
            save_head_patterns(session, inference_id, refs, embeddings, thumbs32[picks], stats)
    write_s = time.perf_counter() - started
    n_patterns = n_inferences * len(refs)
    with store.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        objects = {
            name: int(size)
            for name, size in connection.exec_driver_sql(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
            ).all()
        }
    db_file = Path(settings.database_url.removeprefix("sqlite:///"))
    per_pattern = {name: size / n_patterns for name, size in sorted(objects.items(), key=lambda kv: -kv[1])}
    db_file_bytes = db_file.stat().st_size

    # What one clustering and one 2-D map add (a label, resp. x/y, per head pattern).
    with store.session() as session:
        clustering = Clustering(model_name="smollm2", parameters={})
        pattern_map = PatternMap(parameters={})
        session.add_all([clustering, pattern_map])
        session.flush()
        ids = session.scalars(select(HeadPattern.id)).all()
        session.execute(
            insert(ClusterAssignment),
            [
                {"clustering_id": clustering.id, "head_pattern_id": i, "label": i % 7, "vote_share": None}
                for i in ids
            ],
        )
        session.execute(
            insert(MapPoint),
            [
                {
                    "pattern_map_id": pattern_map.id,
                    "head_pattern_id": i,
                    "x": rng.random(),
                    "y": rng.random(),
                    "fitted": True,
                }
                for i in ids
            ],
        )
    with store.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        analysis_objects = {
            name: int(size) / n_patterns
            for name, size in connection.exec_driver_sql(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
            ).all()
            if "cluster_assignment" in name or "map_point" in name
        }

    index = PatternIndex.open(settings, store)
    index.rebuild_from_db(store)
    flat_bytes = index.file_bytes / n_patterns
    compressed = Settings(data_dir=settings.data_dir, index={"flat_max_vectors": 1024, "ivf_lists": 256})
    ivf = PatternIndex.open(compressed, store)
    ivf.rebuild_from_db(store)
    ivf_file = ivf.file_bytes
    centroid_bytes = 256 * DIM * 4
    store.dispose()
    return {
        "inferences": n_inferences,
        "head_patterns": n_patterns,
        "write_patterns_per_s": n_patterns / write_s,
        "db_file_bytes_per_pattern": db_file_bytes / n_patterns,
        "db_bytes_per_pattern_by_object": per_pattern,
        "one_clustering_and_one_map_bytes_per_pattern": analysis_objects,
        "flat_index_bytes_per_vector": flat_bytes,
        "ivfpq_index_bytes_per_vector": ivf_file / n_patterns,
        "ivfpq_index_bytes_per_vector_without_centroids": (ivf_file - centroid_bytes) / n_patterns,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inferences", type=int, default=200)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--windows-per-file", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    thumbs = real_thumbnails(args.model, args.windows_per_file)
    result = {"thumbnails": thumbnail_formats(thumbs)}
    workdir = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        result["atlas"] = atlas_bytes(workdir, args.inferences, thumbs[32])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
