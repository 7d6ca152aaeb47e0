"""Load test: concurrent clients for minutes mixing every endpoint of the API (pastes and ablations included)
against a real server. Checks: no 5xx but overflow (503/429), which must carry Retry-After (honoured, then
retried); neighbour, list and detail reads stay fast while model calls queue (p50/p95/max per kind, p95 of all
non-model reads, model calls' final-attempt service time); server memory stays bounded (VmHWM, VmRSS sampled
each second); every accepted paste is stored exactly once. Every GET endpoint of /api/openapi.json must be in
the mix; where the atlas has none of something (no map yet), its 404s are expected. It starts `attnlens serve`
over `--data-dir` (no demo build; stopped afterwards) or loads `--url` (loopback only; `--server-pid`):

    .venv/bin/python benchmarks/load.py --data-dir /tmp/load-atlas --allow-writes --json load.json

It WRITES into the served data dir (each paste is stored as a pasted inference): load a copy of an atlas. It
exits with status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from bench_api import ROOT, Client, java_snippet, summarise

from attnlens.api.auth import is_loopback

Request = tuple[str, str, object | None]  # method, path with query, JSON body
Overflows = list[tuple[str, bool]]  # per 503/429: its status and error code, whether it had Retry-After
MISSING_ID = 2**31 - 1  # an id the atlas does not have: the request still goes out, and a 404 is expected
OVERFLOW = (429, 503)


@dataclass(frozen=True)
class Kind:
    route: str  # the OpenAPI path template it exercises; its {parameters} are filled from the atlas's ids
    weight: float
    query: str = ""
    model: bool = False  # takes a turn at the worker's model gate (queues under load)
    body: Callable[[random.Random], object] | None = None  # makes a POST's JSON body; None: a GET
    alias: tuple[tuple[str, str], ...] = ()  # (path parameter, the ids to fill it from) where not its own

    def request(self, rng: random.Random, ids: dict[str, list[int]], heads: list[str]) -> Request:
        values = {key: rng.choice(found) if found else MISSING_ID for key, found in ids.items()}
        values |= {parameter: values[key] for parameter, key in self.alias}
        path = self.route.format(**values, name=rng.choice(heads)) + self.query
        return ("POST", path, self.body(rng)) if self.body else ("GET", path, None)


@dataclass(frozen=True)
class Outcome:
    kind: str
    request: str  # method and path
    status: int  # the final attempt's; 0: no answer (a transport error)
    total: float  # seconds, waits for overflow included
    service: float  # seconds, the final attempt alone
    detail: str = ""  # a failure's answer (its first 300 characters) or the transport error
    pasted: tuple[int, ...] = ()  # where an accepted paste was stored


def mix(heads: list[str], side: int = 256) -> dict[str, Kind]:
    """Every GET; pastes (each new code: a new stored inference); ablations of 3 heads; pattern searches."""
    code, start, end = java_snippet()
    run, serial = uuid.uuid4().hex[:8], itertools.count()
    causal = [[1.0 / (i + 1) if j <= i else 0.0 for j in range(side)] for i in range(side)]

    def paste(_rng: random.Random) -> dict[str, object]:
        head = f"// attnlens load {run}, paste {next(serial)}\n"
        hole = {"start": start + len(head), "end": end + len(head)}
        return {"code": head + code, "hole": hole, "store": True}

    def ablation(rng: random.Random) -> dict[str, object]:
        return {"heads": rng.sample(heads, 3), "max_new_tokens": 16}

    return {
        "neighbors": Kind("/api/patterns/{pattern_id}/neighbors", 20, "?k=12"),
        "thumbnail": Kind("/api/patterns/{pattern_id}/thumbnail", 4),
        "inf_list": Kind("/api/inferences", 6, "?limit=50&offset=100"),
        "inf_search": Kind("/api/inferences", 4, "?source=mined&task=identifiers&q=e&limit=20"),
        "inference": Kind("/api/inferences/{inference_id}", 8),
        "inf_heads": Kind("/api/inferences/{inference_id}/heads", 6),
        "health": Kind("/api/health", 4),
        "analyses": Kind("/api/analyses/status", 2),
        "jobs": Kind("/api/jobs", 3, "?limit=100"),
        "job": Kind("/api/jobs/{job_id}", 2),
        "predictors": Kind("/api/predictors", 3),
        "predictor": Kind("/api/predictors/{predictor_id}", 2),
        "pred_kinds": Kind("/api/predictors/kinds", 1),
        "clusters": Kind("/api/heads/{name}/clusters", 3),
        "map": Kind("/api/maps/latest", 1, "?max_points=5000"),
        "tasks": Kind("/api/tasks", 2),
        "models": Kind("/api/models", 1),
        "corpora": Kind("/api/corpora", 1),
        "findings": Kind("/api/findings", 1),
        "report_md": Kind("/api/findings/report.md", 0.5),
        "report_html": Kind("/api/findings/report.html", 0.25, "?inline=true"),
        "csv_infs": Kind("/api/exports/inferences.csv", 0.5),
        "csv_preds": Kind("/api/exports/predictors.csv", 0.5),
        "csv_map": Kind("/api/exports/maps/latest.csv", 0.25),
        "csv_exp": Kind("/api/exports/experiments/{job_id}.csv", 0.5, alias=(("job_id", "experiment"),)),
        "pattern": Kind("/api/patterns/{pattern_id}", 3, model=True),  # the worker recomputes it
        "analyze": Kind("/api/analyze", 4, model=True, body=paste),
        "ablate": Kind("/api/inferences/{inference_id}/ablations", 4, model=True, body=ablation),
        "search": Kind("/api/patterns/search", 2, model=True, body=lambda _rng: {"values": causal, "k": 12}),
    }


def check_coverage(http: httpx.Client, kinds: dict[str, Kind]) -> None:
    """Every GET endpoint of the schema is in the mix."""
    paths = http.get("/api/openapi.json").raise_for_status().json()["paths"]
    routes = {kind.route for kind in kinds.values()}
    uncovered = sorted(path for path, ops in paths.items() if "get" in ops and path not in routes)
    if uncovered:
        raise SystemExit(f"the load mix does not cover these GET endpoints (add them to mix()): {uncovered}")


def discover(http: httpx.Client) -> tuple[dict[str, list[int]], list[str]]:
    """Real ids for each path parameter, and the head names, from the atlas's own list endpoints."""
    page = http.get("/api/inferences", params={"source": "mined", "limit": 200}).raise_for_status().json()
    inferences = [item["id"] for item in page["items"]]
    if not inferences:
        raise SystemExit("the atlas has no mined inferences; build one first (attnlens atlas build)")
    grids = [http.get(f"/api/inferences/{i}/heads").raise_for_status().json() for i in inferences[:5]]
    jobs = http.get("/api/jobs", params={"limit": 500}).raise_for_status().json()
    experiments = [j["id"] for j in jobs if j["kind"] == "ablation_experiment" and j["state"] == "succeeded"]
    ids = {
        "inference_id": inferences,
        "pattern_id": [cell["id"] for grid in grids for cell in grid["heads"]],
        "job_id": [job["id"] for job in jobs],
        "experiment": experiments,
        "predictor_id": [row["id"] for row in http.get("/api/predictors").json()],
    }
    return ids, [cell["name"] for cell in grids[0]["heads"]]


class LoadClient(Client):
    """bench_api's Client, but each 503/429 is recorded in `overflows` (shared) with whether it carried
    Retry-After, the wait it asks for is honoured until `deadline`, and the final attempt is timed too."""

    def send(self, kind: str, request: Request, overflows: Overflows, deadline: float = 0) -> Outcome:
        method, path, body = request
        start, where = time.perf_counter(), f"{method} {path[:120]}"
        while True:
            attempt = time.perf_counter()
            try:
                response = self.http.request(method, path, json=body)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                return Outcome(kind, where, 0, time.perf_counter() - start, 0.0, error)
            service, status = time.perf_counter() - attempt, response.status_code
            self.statuses[status] += 1
            if status in OVERFLOW:
                is_json = "json" in response.headers.get("content-type", "")
                label = f"{status} {response.json().get('code') if is_json else ''}"
                overflows.append((label, "Retry-After" in response.headers))
            if status not in OVERFLOW or time.monotonic() > deadline:  # no retry past the end of the run
                pasted: tuple[int, ...] = ()
                if status == 200 and path == "/api/analyze":
                    holes = [answer := response.json(), *answer.get("others", [])]
                    pasted = tuple(h["inference_id"] for h in holes if h.get("inference_id") is not None)
                detail = "" if status < 300 else response.text[:300]
                return Outcome(kind, where, status, time.perf_counter() - start, service, detail, pasted)
            self.busy_retries += 1
            retry_after = response.headers.get("Retry-After", "")  # seconds; or an HTTP date, or none: 1 s
            time.sleep(int(retry_after) if retry_after.isdigit() else 1.0)


def pasted_ids(http: httpx.Client) -> list[int]:
    ids: list[int] = []
    while True:
        query = {"source": "pasted", "limit": 200, "offset": len(ids)}
        page = http.get("/api/inferences", params=query).raise_for_status().json()
        ids += [item["id"] for item in page["items"]]
        if not page["items"] or len(ids) >= page["total"]:
            return ids


def check_pastes(http: httpx.Client, accepted: list[int], before: list[int], lost: int) -> dict[str, Any]:
    """Each accepted paste answers by id (as a paste) and is listed exactly once; no id is listed twice; an
    unacknowledged paste (stored, never answered) only where an answer was lost (a timeout)."""
    answers = {i: http.get(f"/api/inferences/{i}") for i in sorted(set(accepted))}
    listed = Counter(pasted_ids(http))
    found = {i: r.json()["source"] for i, r in answers.items() if r.status_code == 200}
    report: dict[str, Any] = {
        "accepted": len(accepted),
        "accepted_twice": sorted(i for i, n in Counter(accepted).items() if n > 1),
        "missing_by_id": sorted(set(answers) - set(found)),
        "not_pasted": sorted(i for i, source in found.items() if source != "pasted"),
        "not_listed_once": sorted(i for i in answers if listed[i] != 1),
        "listed_twice": sorted(i for i, n in listed.items() if n > 1),
        "unacknowledged": sorted(set(listed) - set(before) - set(accepted)),
        "pastes_without_answer": lost,
    }
    problems = [key for key, value in report.items() if isinstance(value, list) and value]
    report["ok"] = problems in ([], ["unacknowledged"]) and len(report["unacknowledged"]) <= lost
    return report


def category(o: Outcome, absent: dict[str, str]) -> str:
    if 200 <= o.status < 300 or o.status in OVERFLOW:  # overflow here: still overflowing when the run ended
        return "ok" if o.status < 300 else "overflow_at_end"
    if o.status == 404 and o.kind in absent:
        return "expected_404"
    return "transport_errors" if o.status == 0 else "other_5xx" if o.status >= 500 else "other_4xx"


def tally(outcomes: Iterable[Outcome]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        table.setdefault(o.kind, {"n": 0, "first": f"{o.request} -> {o.status} {o.detail}"})["n"] += 1
    return table


def mib(pid: int | None, key: str) -> float | None:  # VmRSS, VmHWM from /proc/<pid>/status
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        return next(round(int(line.split()[1]) / 1024, 1) for line in lines if line.startswith(f"{key}:"))
    except (OSError, ValueError, StopIteration):
        return None


def wait_ready(url: str, timeout: float, server: subprocess.Popen[bytes] | None = None) -> dict[str, Any]:
    """Poll /api/health until the worker's state is "ready"; its answer."""
    deadline, state = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise SystemExit(f"the server stopped (status {server.returncode}) before it was ready")
        state = "no answer"
        with suppress(httpx.HTTPError, ValueError, KeyError):
            health = httpx.get(f"{url}/api/health", timeout=10).json()
            state = health["worker"].get("state", "?")
        if state == "ready":
            return health
        if state == "error":
            raise SystemExit(f"the server's worker failed to start: {health['worker'].get('error')}")
        time.sleep(1.0)
    raise SystemExit(f"the server at {url} was not ready after {timeout:.0f} s (worker: {state})")


@contextmanager
def own_server(data_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`attnlens serve` over `data_dir` (nothing built), stopped with SIGINT (then killed) afterwards."""
    command = [str(ROOT / ".venv/bin/attnlens"), "--data-dir", str(data_dir), "serve", "--port", str(port)]
    env = {**os.environ, "ATTNLENS_ATLAS__BUILD_DEMO": "false"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        process.kill()  # nothing when it has stopped
        process.wait()


def load(url: str, args: argparse.Namespace, pid: int | None) -> dict[str, Any]:
    """Discover ids, check coverage, probe each GET once, run the clients, check the pastes."""
    health = wait_ready(url, args.start_timeout)
    http = httpx.Client(base_url=url, timeout=args.timeout)
    ids, heads = discover(http)
    kinds = mix(heads)
    check_coverage(http, kinds)
    overflows: Overflows = []
    prober, rng = LoadClient(url, args.timeout), random.Random(args.seed)
    probes = [prober.send(n, k.request(rng, ids, heads), overflows) for n, k in kinds.items() if not k.body]
    absent = {o.kind: o.detail[:200] for o in probes if o.status == 404}  # what the atlas has none of
    before = pasted_ids(http)
    print(f"atlas: {', '.join(f'{len(v)} {k}s' for k, v in ids.items())}; 404 expected: {sorted(absent)}")
    deadline, outcomes, rss = time.monotonic() + args.seconds, list[Outcome](), list[float]()
    done = threading.Event()

    def client_loop(index: int) -> int:
        client, rng = LoadClient(url, args.timeout), random.Random(args.seed + index)
        while time.monotonic() < deadline:
            name = rng.choices(list(kinds), [kind.weight for kind in kinds.values()])[0]
            outcomes.append(client.send(name, kinds[name].request(rng, ids, heads), overflows, deadline))
        return client.busy_retries

    def sample_rss() -> None:
        while not done.wait(1.0):
            if (value := mib(pid, "VmRSS")) is not None:
                rss.append(value)

    print(f"{args.clients} clients for {args.seconds:.0f} s against {url} (server pid {pid})")
    threading.Thread(target=sample_rss, daemon=True).start()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        retries = sum(pool.map(client_loop, range(args.clients)))
    wall = time.perf_counter() - started
    done.set()
    outcomes += [o for o in probes if category(o, absent) not in ("ok", "expected_404")]  # failures count
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[category(outcome, absent)].append(outcome)
    ok, lost = groups["ok"], groups["transport_errors"] + groups["overflow_at_end"]
    lost_pastes = sum(o.kind == "analyze" for o in lost)  # no answer: stored or not, nobody knows
    pastes = check_pastes(http, [i for o in ok for i in o.pasted], before, lost_pastes)
    memory = {"peak_rss_vmhwm": mib(pid, "VmHWM"), "final_rss": mib(pid, "VmRSS"), "rss_samples": len(rss)}
    missing = sum(not had for _, had in overflows)
    carried = {"all_had_retry_after": not missing, "without_retry_after": missing, "retries": retries}

    print(f"wall {wall:.1f} s. 2xx latency per kind (a retried request's waits included):")
    latency = {n: summarise(n, times) for n in kinds if (times := [o.total for o in ok if o.kind == n])}
    print("model calls, final attempt only (service time):")
    service = {n: summarise(n, [o.service for o in ok if o.kind == n]) for n in latency if kinds[n].model}
    print("non-model reads (neighbours, lists, details) under load, all kinds together:")
    reads = [o.total for o in ok if not kinds[o.kind].model]
    return {
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "settings": vars(args),
        "server": {"url": url, "pid": pid, "worker": health["worker"], "atlas": health.get("atlas")},
        "wall_s": wall,
        "mix": {n: f"{k.weight} x {k.route}{k.query}{' (model)' * k.model}" for n, k in kinds.items()},
        "statuses": {n: dict(Counter(o.status for o in outcomes if o.kind == n)) for n in kinds},
        "latency": latency,
        "service_latency_model_calls": service,
        "reads_under_load": summarise("reads", reads) if reads else None,
        "overflow": {"count": len(overflows), "by_code": Counter(code for code, _ in overflows), **carried},
        **{key: tally(groups[key]) for key in ("expected_404", "other_4xx", "transport_errors", "other_5xx")},
        "pastes": pastes,
        "server_memory_mib": {**memory, "sampled_max_rss": max(rss, default=None)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", help="load this running server instead of starting one (loopback only)")
    parser.add_argument("--data-dir", type=Path, help="the atlas to serve (required without --url)")
    parser.add_argument("--allow-writes", action="store_true", help="required: pastes go into the data dir")
    parser.add_argument("--port", type=int, default=0, help="port of the server started here (0: a free one)")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its memory")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per request")
    parser.add_argument("--start-timeout", type=float, default=900, help="seconds for the model to load")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every measurement here")
    args = parser.parse_args()
    if not args.allow_writes:
        parser.error("the load stores pastes in the served data dir: pass --allow-writes (use a copy)")
    if args.url:
        if not is_loopback(host := urlparse(args.url).hostname or ""):
            raise SystemExit(f"refusing to load {host}: this script only targets loopback servers")
        result = load(args.url.rstrip("/"), args, args.server_pid)
    else:
        if args.data_dir is None or not args.data_dir.is_dir():
            parser.error("--data-dir (an existing atlas folder) is required unless --url is given")
        with socket.socket() as sock:  # a free port, unless one is given
            sock.bind(("127.0.0.1", args.port))
            port = sock.getsockname()[1]
        url, log = f"http://127.0.0.1:{port}", Path(tempfile.gettempdir()) / f"attnlens-load-{port}.log"
        print(f"starting attnlens serve over {args.data_dir} on {url} (log: {log})")
        with own_server(args.data_dir.resolve(), port, log) as process:
            wait_ready(url, args.start_timeout, process)
            result = load(url, args, process.pid)  # its memory is read before the server stops
        result["server"]["log"] = str(log)
    reads, latency = result["reads_under_load"], result["latency"]
    if reads:
        parts = [f"{k} {latency[k]['p95_s'] * 1e3:.1f} ms" for k in ("neighbors", "inf_list") if k in latency]
        print(f"** p95 of non-model reads under load: {reads['p95_s'] * 1e3:.1f} ms ({', '.join(parts)}) **")
    print("statuses by kind:", json.dumps(result["statuses"]))
    for key in ("overflow", "expected_404", "other_4xx", "transport_errors", "other_5xx", "pastes"):
        print(f"{key}: {json.dumps(result[key], indent=1) if result[key] else 0}")
    print("server memory, MiB:", json.dumps(result["server_memory_mib"]))
    overflow, other_5xx = result["overflow"], sum(row["n"] for row in result["other_5xx"].values())
    failures = result["failures"] = [f"{other_5xx} 5xx answers other than overflow"] if other_5xx else []
    if not overflow["all_had_retry_after"]:
        failures.append(f"{overflow['without_retry_after']} overflow answers lacked Retry-After")
    if not result["pastes"]["ok"]:
        failures.append("an accepted paste was not stored exactly once (see pastes)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"wrote {args.json}")
    if failures:
        print("FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
