"""API latency on a running attnlens server: analyze a pasted snippet, ablate heads and re-generate,
nearest patterns; first one client at a time (p50/p95), then 8 concurrent clients with a mixed load.

Start a server over an atlas first (for example the demo atlas of `make run`), then:

    .venv/bin/python benchmarks/bench_api.py --url http://127.0.0.1:8000 [--sequential 20] [--clients 8]

Only loopback URLs are accepted: this is a load generator. Bounded in count (every client sends
`--per-client` requests) and in time (`--max-seconds`). A 503 (the model's queue is full) is answered by
waiting `Retry-After` and retrying, as the pages do; it is counted separately from other 5xx, which the
goal says must be zero. Timings of a retried request include its waits.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parents[1]
SNIPPET_FILE = ROOT / "tests" / "data" / "java"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def java_snippet(min_chars: int = 1400) -> tuple[str, int, int]:
    """A real Java file cut after `min_chars` at a method call; the hole is that call's name."""
    for path in sorted(SNIPPET_FILE.rglob("*.java")):
        text = path.read_text()
        calls = [m for m in re.finditer(r"\b([a-z][A-Za-z0-9]{2,})\s*\(", text) if m.start() >= min_chars]
        if calls:
            call = calls[0]
            return text[: call.end(1) + 200], call.start(1), call.end(1)
    raise SystemExit(f"no Java file in {SNIPPET_FILE} is long enough for a {min_chars}-character snippet")


class Client:
    def __init__(self, url: str, timeout: float) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout)
        self.statuses: Counter[int] = Counter()
        self.busy_retries = 0

    def call(self, method: str, path: str, body: object | None = None) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        while True:
            response = self.http.request(method, path, json=body)
            self.statuses[response.status_code] += 1
            if response.status_code != 503:
                return time.perf_counter() - start, response
            self.busy_retries += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))


def discover(client: Client) -> tuple[list[int], list[int], list[str]]:
    """Inference ids, pattern ids and head names to exercise, from the atlas itself."""
    _, health = client.call("GET", "/api/health")
    _, page = client.call("GET", "/api/inferences?limit=50")
    inferences = [item["id"] for item in page.json()["items"]]
    if not inferences:
        raise SystemExit("the atlas has no inferences yet; wait for the build (see /api/jobs) and run again")
    _, grid = client.call("GET", f"/api/inferences/{inferences[0]}/heads")
    patterns = [cell["id"] for cell in grid.json()["heads"]]
    names = [cell["name"] for cell in grid.json()["heads"]]
    model = health.json()["worker"].get("model", {})
    print(f"server: {json.dumps(model)[:200]}")
    print(
        f"atlas: {page.json()['total']} inferences; using {len(inferences)} of them and {len(patterns)} "
        "patterns"
    )
    return inferences, patterns, names


def operations(inferences: list[int], patterns: list[int], names: list[str], seed: int):
    """Request makers by kind. The worker keeps the un-ablated baseline of recent prompts, so ablation is
    timed two ways: `ablate_first` on an inference not ablated before (baseline + ablated generation) and
    `ablate_again` on one already ablated with other heads (the gallery's click-head-after-head flow)."""
    rng = random.Random(seed)
    code, start, end = java_snippet()
    fresh = iter(inferences[1:])

    def ablation(inference_id: int):
        return (
            "POST",
            f"/api/inferences/{inference_id}/ablations",
            {"heads": rng.sample(names, 3), "max_new_tokens": 16},
        )

    return {
        "analyze": lambda: ("POST", "/api/analyze", {"code": code, "hole": {"start": start, "end": end}}),
        "ablate_first": lambda: ablation(next(fresh)),
        "ablate_again": lambda: ablation(inferences[0]),
        "ablate": lambda: ablation(rng.choice(inferences)),
        "neighbors": lambda: ("GET", f"/api/patterns/{rng.choice(patterns)}/neighbors?k=12", None),
    }


def summarise(name: str, times: list[float]) -> dict[str, float]:
    row = {
        "n": len(times),
        "p50_s": statistics.median(times),
        "p95_s": percentile(times, 0.95),
        "max_s": max(times),
    }
    print(
        f"  {name:12s} n={row['n']:3d}  p50 {row['p50_s'] * 1000:8.1f} ms  p95 {row['p95_s'] * 1000:8.1f} ms "
        f" max {row['max_s'] * 1000:8.1f} ms"
    )
    return row


def sequential(url: str, ops, repeats: int, timeout: float) -> tuple[dict, Counter]:
    client = Client(url, timeout)
    results = {}
    print(f"one client, {repeats} requests per kind (after one warm-up each):")
    for name, make in ops.items():
        if name == "ablate":  # the mixed kind, for the concurrent phase
            continue
        client.call(*make())  # warm-up: first-call costs (kNN assigners, caches) are not latency
        times = []
        for _ in range(repeats):
            elapsed, response = client.call(*make())
            if response.status_code != 200:
                raise SystemExit(f"{name}: {response.status_code} {response.text[:300]}")
            times.append(elapsed)
        results[name] = summarise(name, times)
    return results, client.statuses


def concurrent(
    url: str,
    ops,
    clients: int,
    per_client: int,
    mix: dict[str, float],
    max_seconds: float,
    timeout: float,
    seed: int,
):
    times: dict[str, list[float]] = {name: [] for name in ops}
    statuses: Counter[int] = Counter()
    retries = 0
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def run(index: int) -> None:
        nonlocal retries
        client = Client(url, timeout)
        rng = random.Random(seed + index)
        kinds, weights = list(mix), list(mix.values())
        for _ in range(per_client):
            if time.monotonic() > deadline:
                break
            name = rng.choices(kinds, weights)[0]
            elapsed, response = client.call(*ops[name]())
            with lock:
                if response.status_code == 200:
                    times[name].append(elapsed)
        with lock:
            statuses.update(client.statuses)
            retries += client.busy_retries

    print(f"{clients} concurrent clients, {per_client} requests each, mix {mix}:")
    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    results = {name: summarise(name, values) for name, values in times.items() if values}
    other_5xx = sum(n for status, n in statuses.items() if status >= 500 and status != 503)
    print(
        f"  wall {wall:.1f} s; statuses {dict(sorted(statuses.items()))}; 503 busy retries {retries}; other "
        f"5xx {other_5xx}"
    )
    return {
        "wall_s": wall,
        "statuses": dict(statuses),
        "busy_retries": retries,
        "other_5xx": other_5xx,
        "latency": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--sequential", type=int, default=20, help="requests per kind with one client")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=15)
    parser.add_argument("--mix", default="neighbors=0.6,analyze=0.2,ablate=0.2")
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    host = urlparse(args.url).hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit(f"refusing to load {host}: this script only targets loopback servers")
    mix = {name: float(share) for name, share in (part.split("=") for part in args.mix.split(","))}

    print(f"{platform.machine()}, {platform.processor() or 'cpu'}")
    inferences, patterns, names = discover(Client(args.url, args.timeout))
    ops = operations(inferences, patterns, names, args.seed)
    if len(inferences) < args.sequential + 2:
        raise SystemExit(
            f"ablate_first needs {args.sequential + 2} inferences; the atlas listed {len(inferences)}"
        )
    unknown = set(mix) - set(ops)
    if unknown:
        raise SystemExit(f"unknown kinds in --mix: {sorted(unknown)}; use {sorted(ops)}")
    one, _ = sequential(args.url, ops, args.sequential, args.timeout)
    many = concurrent(
        args.url, ops, args.clients, args.per_client, mix, args.max_seconds, args.timeout, args.seed
    )
    if args.json:
        args.json.write_text(json.dumps({"sequential": one, "concurrent": many}, indent=2))


if __name__ == "__main__":
    main()
