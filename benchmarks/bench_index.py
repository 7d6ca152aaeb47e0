"""Nearest-neighbour search over head-pattern embeddings, end to end through a real SQLite atlas.

For each size N: write N head patterns (128-d embeddings, 32x32 thumbnails, statistics) with the store's
own API, rebuild the index from the database (flat up to `flat_max_vectors`, IVF-PQ beyond, as the app
does), then time single-query searches through `PatternIndex.search` (re-ranking included) and measure
recall@10 against exact search over the same float16 embeddings. Filtered searches are timed three ways:
the app's path (`PatternIndex.search(filter_ids=...)`: id selector for narrow filters, over-fetch for
broad ones, then re-ranking), the raw FAISS id selector alone, and over-fetch-then-filter alone; the SQL
that turns a filter into ids is timed too. Baselines at the same N: exact flat search, IVF-PQ without
re-ranking, and HNSW32.

Synthetic embeddings: unit vectors from 1,000 clusters in a 16-d latent space mapped to 128-d plus
isotropic noise (real AP-MAE embeddings are clustered and of low intrinsic dimension; pure isotropic
Gaussians, the worst case for any approximate index, are reported with --data gaussian).

    nice -n 10 .venv/bin/python benchmarks/bench_index.py --sizes 100000 1000000 [--hnsw] [--data gaussian]

`--paste` times instead what one pasted inference (270 head patterns) costs the index at each size, side
by side in one run on the same atlas and the same pastes:
- before (the single-file index of before issue 12): add the 270 vectors to the whole index, save the
  whole file, and the API's reload of the whole file; and the old `sync_index` end to end (read the index,
  compare every id with the database, add, save);
- after (one index per space, a delta beside the main index): `sync_index` end to end (the inference
  fingerprint, the new rows' embeddings, append to the delta, write the delta and the manifest), the
  same update without the database reads (add + save), and the API's `reload_if_changed` (the delta);
- the after path with the delta nearly full (`delta_max_vectors`), and the fold that empties it (with
  the API's reload of the new main file), which happens once every delta_max_vectors / 270 pastes.

    nice -n 10 .venv/bin/python benchmarks/bench_index.py --paste --sizes 100000 1000000 --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from attnlens.atlas.indexing import sync_index
from attnlens.config import Settings
from attnlens.heads import HeadRef
from attnlens.index import IndexSpace, PatternIndex
from attnlens.index.files import read_index, write_index_atomically
from attnlens.index.search import faiss_threads, filtered_nprobe
from attnlens.index.shapes import prepare_vectors, remove_ids, stored_ids
from attnlens.store import PatternFilter, matching_pattern_ids, open_store, save_scenarios
from attnlens.store.patterns import (
    STAT_COLUMNS,
    embedding_dims,
    iter_embedding_batches,
    load_embeddings,
    pattern_count,
    pattern_ids,
    save_head_patterns,
    save_inference,
)

DIM = 128
LAYERS, HEADS = 30, 9  # SmolLM2-135M: 270 head patterns per inference
TASKS = [f"task{i}" for i in range(11)]
SPACE = IndexSpace("smollm2", None)  # the atlas's one embedding space (rows written without an embedder)


@dataclass(frozen=True)
class Scenario:  # the fields save_scenarios reads
    corpus: str
    file_path: str
    file_sha256: str
    task: str
    node_type: str = "identifier"
    hole_start: int = 0
    hole_end: int = 1
    target_text: str = "x"
    target_ids: tuple[int, ...] = (1,)
    prompt_ids: tuple[int, ...] = tuple(range(256))
    mode: str = "l2r"
    context_tokens: int = 256
    n_prefix_tokens: int = 256
    n_suffix_tokens: int = 0
    seed: int = 0
    alignment: str = "exact"


def synthetic(n: int, seed: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        x = rng.standard_normal((n, DIM), dtype=np.float32)
    else:
        basis = np.random.default_rng(7).standard_normal((16, DIM), dtype=np.float32)
        centres = np.random.default_rng(8).standard_normal((1000, 16), dtype=np.float32)
        z = centres[rng.integers(0, 1000, n)] + 0.5 * rng.standard_normal((n, 16), dtype=np.float32)
        x = z @ basis + 0.3 * rng.standard_normal((n, DIM), dtype=np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    faiss.normalize_L2(x)
    return x


def fill_database(settings: Settings, n: int, kind: str) -> dict[str, float]:
    store = open_store(settings)
    refs = [HeadRef(layer, head) for layer in range(LAYERS) for head in range(HEADS)]
    n_inferences = n // len(refs)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    with store.session() as session:
        scenarios = [
            Scenario("bench", f"F{i}.java", f"{i:064x}", TASKS[i % len(TASKS)]) for i in range(n_inferences)
        ]
        scenario_ids = save_scenarios(session, scenarios, model_name="smollm2")
    thumbs = np.tril(rng.integers(0, 256, (len(refs), 32, 32))).astype(np.uint8)
    stats = {name: rng.random(len(refs)) for name in STAT_COLUMNS}
    for start in range(0, n_inferences, 50):
        with store.session() as session:
            for i in range(start, min(start + 50, n_inferences)):
                inference_id = save_inference(
                    session,
                    model_name="smollm2",
                    scenario_id=scenario_ids[i],
                    completion_ids=[1],
                    first_token_correct=bool(rng.random() < 0.5),
                    span_correct=bool(rng.random() < 0.4),
                    expected_token_prob=float(rng.random()),
                )
                vectors = synthetic(len(refs), seed=1000 + i, kind=kind)
                save_head_patterns(session, inference_id, refs, vectors, thumbs, stats)
    seconds = time.perf_counter() - started
    store.dispose()
    return {"write_s": seconds, "patterns_per_s": n_inferences * len(refs) / seconds}


def stored_vectors(store) -> tuple[np.ndarray, np.ndarray]:
    ids, vectors = [], []
    with store.session() as session:
        for batch_ids, batch in iter_embedding_batches(session):
            ids.append(batch_ids)
            vectors.append(batch)
    x = np.concatenate(vectors)
    faiss.normalize_L2(x)
    return np.concatenate(ids), x


def exact_top(queries: np.ndarray, x: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    with faiss_threads(2):
        flat = faiss.IndexFlatIP(x.shape[1])
        flat.add(x)
        _, rows = flat.search(queries, k)
    return np.where(rows >= 0, ids[np.maximum(rows, 0)], -1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    per_query = [
        len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum())
        for a, b in zip(found, truth, strict=True)
    ]
    return float(np.mean(per_query))


def timed(fn, queries: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    results, latencies = [], []
    for q in queries:
        start = time.perf_counter()
        results.append(fn(q[None, :]))
        latencies.append(time.perf_counter() - start)
    ms = np.asarray(latencies) * 1e3
    return np.concatenate(results), {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
    }


def bench_size(n: int, args: argparse.Namespace, workdir: Path) -> dict:
    settings = Settings(data_dir=workdir / f"atlas-{n}")
    out: dict = {"n": n, "data": args.data, "load_avg_start": os.getloadavg()[0]}
    out["write"] = fill_database(settings, n, args.data)
    store = open_store(settings)
    atlas = PatternIndex.open(settings, store)
    start = time.perf_counter()
    atlas.rebuild_from_db(store)
    out["rebuild_s"] = time.perf_counter() - start
    index = atlas.space(SPACE)
    assert index is not None  # rebuilt just now
    out["kind"] = index.kind
    out["index_bytes_per_vector"] = atlas.file_bytes / index.count
    db_file = Path(settings.database_url.removeprefix("sqlite:///"))
    with store.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    out["db_bytes_per_pattern"] = db_file.stat().st_size / index.count

    ids, x = stored_vectors(store)
    queries = synthetic(args.queries, seed=99, kind=args.data)
    truth = exact_top(queries, x, ids, 10)
    k = 10

    found, lat = timed(lambda q: atlas.search(q, k, space=SPACE).ids, queries)
    out["search"] = {**lat, "recall@10": recall(found, truth), "kind": index.kind}

    # Baselines on the same vectors, in memory, one thread (as the app searches).
    with faiss_threads(1):
        flat = faiss.IndexFlatIP(DIM)
        flat.add(x)
        found, lat = timed(lambda q, flat=flat: ids[flat.search(q, k)[1]], queries)
        out["flat_exact"] = {**lat, "recall@10": recall(found, truth)}
        if index.kind == "ivfpq":
            codes_only = PatternIndex.open(settings)  # no store: no re-ranking
            found, lat = timed(lambda q: codes_only.search(q, k, space=SPACE).ids, queries)
            out["ivfpq_no_rerank"] = {**lat, "recall@10": recall(found, truth)}
        if args.hnsw:
            start = time.perf_counter()
            with faiss_threads(2):
                hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
                hnsw.add(x)
            build = time.perf_counter() - start
            hnsw.hnsw.efSearch = 64
            found, lat = timed(lambda q, hnsw=hnsw: ids[hnsw.search(q, k)[1]], queries)
            size = len(faiss.serialize_index(hnsw)) / n
            out["hnsw32_ef64"] = {
                **lat,
                "recall@10": recall(found, truth),
                "build_s": build,
                "bytes_per_vector": size,
            }

    filters = {
        "one head (L12H3)": PatternFilter(layer=12, head=3),
        "one layer (12)": PatternFilter(layer=12),
        "one task": PatternFilter(task="task3"),
        "first token correct": PatternFilter(first_token_correct=True),
    }
    out["filtered"] = {}
    position = {int(i): row for row, i in enumerate(ids)}
    for name, pattern_filter in filters.items():
        start = time.perf_counter()
        with store.session() as session:
            allowed = matching_pattern_ids(session, pattern_filter)
        sql_ms = (time.perf_counter() - start) * 1e3
        rows = np.fromiter((position[int(i)] for i in allowed), dtype=np.int64, count=len(allowed))
        filtered_truth = exact_top(queries, x[rows], ids[rows], k)
        found, app_path = timed(
            lambda q, allowed=allowed: atlas.search(q, k, filter_ids=allowed, space=SPACE).ids, queries
        )
        app_path["recall@10"] = recall(found, filtered_truth)
        with faiss_threads(1):  # the id selector alone, whatever the filter's breadth
            raw = faiss.IDSelectorBatch(allowed)
            params = faiss.SearchParametersIVF() if index.kind == "ivfpq" else faiss.SearchParameters()
            params.sel = raw
            main = index.main_index()
            if index.kind == "ivfpq":
                ivf = faiss.extract_index_ivf(main)
                params.nprobe = filtered_nprobe(index.settings.nprobe, ivf.nlist, len(allowed), index.count)
            found, selector = timed(
                lambda q, params=params, main=main: main.search(q, k, params=params)[1], queries
            )
            selector["recall@10"] = recall(found, filtered_truth)
            selector["note"] = "no re-ranking" if index.kind == "ivfpq" else "exact"
        fetch = int(min(index.count, np.ceil(k * index.count / max(len(allowed), 1) * 2)))

        def over_fetch(q, allowed=allowed, fetch=fetch):
            got = atlas.search(q, fetch, space=SPACE).ids[0]
            kept = got[np.isin(got, allowed)][:k]
            return np.pad(kept, (0, k - len(kept)), constant_values=-1)[None, :]

        found, over = timed(over_fetch, queries[: max(10, args.queries // 10)])
        over["recall@10"] = recall(found, filtered_truth[: len(found)])
        over["fetch"] = fetch
        out["filtered"][name] = {
            "allowed": len(allowed),
            "sql_ms": sql_ms,
            "app_path": app_path,
            "selector_only": selector,
            "over_fetch": over,
        }
    out["load_avg_end"] = os.getloadavg()[0]
    store.dispose()
    return out


def ensure_atlas(settings: Settings, n: int, kind: str) -> dict[str, float]:
    """Fill the atlas of size n, or reuse the one a previous --paste run left in --workdir (dropping the
    pasted inferences a run interrupted before its clean-up left behind)."""
    n_inferences = n // (LAYERS * HEADS)
    if (settings.data_dir / "attnlens.db").exists():
        store = open_store(settings)
        drop_pastes(store, n_inferences)
        with store.session() as session:
            count = pattern_count(session)
        store.dispose()
        if count == n_inferences * LAYERS * HEADS:
            return {"reused": count}
        shutil.rmtree(settings.data_dir)
    return fill_database(settings, n, kind)


def drop_pastes(store, keep_inferences: int) -> None:
    """Delete the inferences after the atlas's first `keep_inferences` (the pastes of a run), with their
    head patterns (ON DELETE CASCADE), so that every run starts from the same atlas."""
    from sqlalchemy import delete

    from attnlens.store.models import Inference

    with store.session() as session:
        session.execute(delete(Inference).where(Inference.id > keep_inferences))


def write_paste(store, seed: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """One pasted inference: 270 head patterns of SmolLM2's shape, as `write_processed` stores them."""
    refs = [HeadRef(layer, head) for layer in range(LAYERS) for head in range(HEADS)]
    rng = np.random.default_rng(seed)
    vectors = synthetic(len(refs), seed=seed, kind=kind)
    thumbs = np.tril(rng.integers(0, 256, (len(refs), 32, 32))).astype(np.uint8)
    stats = {name: rng.random(len(refs)) for name in STAT_COLUMNS}
    with store.session() as session:
        inference_id = save_inference(
            session, model_name="smollm2", prompt_ids=list(range(256)), completion_ids=[1]
        )
        ids = save_head_patterns(session, inference_id, refs, vectors, thumbs, stats)
    return np.asarray(ids, dtype=np.int64), vectors


def old_sync(path: Path, store, stages: dict[str, list[float]]) -> None:
    """What `sync_index` did for a paste before issue 12, step by step: open the one index file, compare
    every id (and the embedding widths) with the database, add the missing vectors, save the whole file."""
    start = time.perf_counter()
    index = read_index(path)
    opened = time.perf_counter()
    with store.session() as session:
        db_ids = pattern_ids(session)
        embedding_dims(session)
        missing = np.setdiff1d(db_ids, stored_ids(index))
        vectors = load_embeddings(session, missing)
    checked = time.perf_counter()
    remove_ids(index, missing)
    index.add_with_ids(prepare_vectors(vectors, dim=index.d, cosine=True), missing)
    write_index_atomically(index, path)
    saved = time.perf_counter()
    stages["before: open (read the file)"].append(opened - start)
    stages["before: check (every id)"].append(checked - opened)
    stages["before: add + save (whole file)"].append(saved - checked)
    stages["before: sync_index, end to end"].append(saved - start)
    start = time.perf_counter()
    read_index(path)
    stages["before: API reload (whole file)"].append(time.perf_counter() - start)


def bench_paste(n: int, args: argparse.Namespace, workdir: Path) -> dict:
    settings = Settings(data_dir=workdir / f"atlas-{n}")
    out: dict = {"n": n, "data": args.data, "load_avg_start": os.getloadavg()[0]}
    out["write"] = ensure_atlas(settings, n, args.data)
    store = open_store(settings)
    with store.session() as session:
        out["stored_vectors"] = pattern_count(session)
    shutil.rmtree(settings.index_dir, ignore_errors=True)
    start = time.perf_counter()
    PatternIndex.open(settings, store).rebuild_from_db(store)
    out["rebuild_s"] = time.perf_counter() - start
    held = PatternIndex.open(settings, store).space(SPACE)
    assert held is not None and held.main_path is not None  # rebuilt just now
    out["kind"], out["main_file_bytes"] = held.kind, held.main_path.stat().st_size
    # Before: the same vectors in one file, as the single index of before issue 12 held them.
    legacy_path = workdir / f"legacy-{n}" / "patterns.faiss"
    legacy_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(held.main_path, legacy_path)
    # After, the update alone (no database reads): a scratch copy of the index folder (the main file
    # hard-linked: saves never write into a file, they replace it) that adds the same vectors.
    scratch_dir = workdir / f"scratch-{n}"
    shutil.rmtree(scratch_dir, ignore_errors=True)
    scratch_dir.mkdir()
    for path in settings.index_dir.iterdir():
        if path.suffix in (".faiss", ".json"):
            os.link(path, scratch_dir / path.name)
    scratch = PatternIndex(scratch_dir, settings.index).space(SPACE)
    assert scratch is not None  # copied from the manifest

    reader = PatternIndex.open(settings, store)  # the API's: holds the main index once searched
    queries = synthetic(5, seed=99, kind=args.data)
    reader.search(queries, 10, space=SPACE)
    stages: dict[str, list[float]] = {
        name: []
        for name in (
            "before: open (read the file)",
            "before: check (every id)",
            "before: add + save (whole file)",
            "before: sync_index, end to end",
            "before: API reload (whole file)",
            "after: add + save (delta)",
            "after: sync_index, end to end",
            "after: API reload (delta)",
        )
    }

    def after(ids: np.ndarray, vectors: np.ndarray) -> None:
        start = time.perf_counter()
        scratch.add(ids, vectors)
        scratch.save()
        stages["after: add + save (delta)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        result = sync_index(settings, store)
        stages["after: sync_index, end to end"].append(time.perf_counter() - start)
        assert result["added"] == len(ids) and not result["rebuilt"], result
        start = time.perf_counter()
        assert reader.reload_if_changed()
        stages["after: API reload (delta)"].append(time.perf_counter() - start)

    for repeat in range(args.pastes):  # the same paste both ways, alternating which goes first
        ids, vectors = write_paste(store, seed=100_000 + n + repeat, kind=args.data)
        if repeat % 2:
            after(ids, vectors)
            old_sync(legacy_path, store, stages)
        else:
            old_sync(legacy_path, store, stages)
            after(ids, vectors)
    out["pastes"] = args.pastes
    out["stages_ms"] = {
        name: {"median": 1e3 * float(np.median(t)), "max": 1e3 * float(np.max(t))}
        for name, t in stages.items()
    }
    out["delta_bytes_after_pastes"] = reader.space(SPACE).delta_path.stat().st_size
    assert reader.search(vectors[:1], 1, space=SPACE).ids[0, 0] == ids[0]

    # The delta nearly full: one paste more, then the paste that folds it into the main index; `--folds`
    # times over.
    delta_max = settings.index.delta_max_vectors
    nearly_full: dict[str, list[float]] = {"sync": [], "api_reload": []}
    fold: dict[str, list[float]] = {"sync": [], "api_reload_and_first_search": []}
    seed = 200_000 + n
    for _ in range(args.folds):
        for _ in range((delta_max - reader.space(SPACE).delta_count) // (LAYERS * HEADS) - 1):
            seed += 1
            write_paste(store, seed=seed, kind=args.data)
        sync_index(settings, store)
        reader.reload_if_changed()
        for timings, folding in ((nearly_full, False), (fold, True)):
            seed += 1
            write_paste(store, seed=seed, kind=args.data)
            start = time.perf_counter()
            sync_index(settings, store)
            timings["sync"].append(time.perf_counter() - start)
            start = time.perf_counter()
            reader.reload_if_changed()
            if folding:
                reader.search(queries[:1], 10, space=SPACE)  # reads the new main index
                timings["api_reload_and_first_search"].append(time.perf_counter() - start)
                assert reader.space(SPACE).delta_count == 0
            else:
                timings["api_reload"].append(time.perf_counter() - start)
                out["nearly_full_delta_vectors"] = reader.space(SPACE).delta_count
                out["nearly_full_delta_bytes"] = reader.space(SPACE).delta_path.stat().st_size
    out["nearly_full_delta_ms"] = {name: 1e3 * float(np.median(t)) for name, t in nearly_full.items()}
    out["fold_ms"] = {name: 1e3 * float(np.median(t)) for name, t in fold.items()}
    out["fold_every_n_pastes"] = delta_max // (LAYERS * HEADS)
    report = PatternIndex.open(settings, store).check(store)
    assert report.ok, report.summary()
    out["load_avg_end"] = os.getloadavg()[0]
    drop_pastes(store, n // (LAYERS * HEADS))
    store.dispose()
    shutil.rmtree(scratch_dir, ignore_errors=True)
    shutil.rmtree(legacy_path.parent, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", choices=["clustered", "gaussian"], default="clustered")
    parser.add_argument("--hnsw", action="store_true", help="also build and time HNSW32 (slow at 1M)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the atlases here (default: a temp dir)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--paste", action="store_true", help="time one paste's index update, before and after issue 12"
    )
    parser.add_argument("--pastes", type=int, default=7, help="with --paste: pastes timed at each size")
    parser.add_argument("--folds", type=int, default=3, help="with --paste: folds timed at each size")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-index-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for n in args.sizes:
            result = bench_paste(n, args, workdir) if args.paste else bench_size(n, args, workdir)
            print(json.dumps(result, indent=1), flush=True)
            results.append(result)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
