"""GPU suite: the forward, AP-MAE, build and API figures in one short unattended run, written as JSON.

    .venv/bin/python benchmarks/gpu_suite.py --out gpu.json [--device cuda] [--budget-s 480] [--quick]

Runs in this process, in this order (docs/benchmarks.md, "GPU suite"):

  forward  the target model (SmolLM2 through the app's `TargetModel`) with attention capture, fp32 and bf16
           where the device supports it, batches of 1, 4 and 16 windows of 256 tokens cut from the JDK
           sources (or the Java fixtures), with the measured matmul rate and the FLOP floor;
  apmae    AP-MAE embedding (the app's loader and settings) of 270 and 2,700 raw 256 x 256 patterns;
  build    a small atlas (48 scenarios) through the app's build pipeline (`run_build` on a `LocalWorker`,
           then `sync_index`: what an `atlas_build` job does) into a temporary data dir;
  api      API latencies in-process (FastAPI's TestClient over that atlas, the same LocalWorker on the
           device): analyze, ablate first / again (3 heads, 16 tokens), neighbours, a stored thumbnail.

Every section is timed (with `torch.cuda.synchronize()` around device work), reports its peak GPU memory,
and is written to `--out` as it finishes (sub-results as they come), so a run cut short keeps what it
measured. Each section must be done by its share of the budget (forward 35%, AP-MAE 50%, build 75%, API
100%, cumulative: what one leaves the next may use); past it, what is left is skipped with the reason
written down. A section's error is caught and recorded, and the next section runs. A watchdog ends the
process (exit 3) if a call hangs beyond the budget plus a grace period, after writing the JSON.

`--quick` runs tiny sizes (the tiny random StarCoder2, a few windows and patterns, 8 scenarios from the Java
fixtures) so that `--device cpu --quick` checks the whole suite on a CPU in well under a minute
(tests/test_gpu_suite.py); its figures are a smoke test, not measurements.

Exit status: 0 when every section ran or was skipped for time, 1 when a section failed, 2 when the device
is missing, 3 when the watchdog ended the run.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
JDK = Path("/usr/lib/jvm/openjdk-17/lib/src.zip")
JAVA_FIXTURES = ROOT / "tests" / "data" / "java"
SECTIONS = ("forward", "apmae", "build", "api")
# Cumulative share of the budget by which each section must be done.
SHARES = {"forward": 0.35, "apmae": 0.5, "build": 0.75, "api": 1.0}
BUILD_TASKS = ("identifiers", "random", "closing_bracket", "string_literals")  # as bench_build.py
FORMAT_VERSION = 1


# -- sizes ------------------------------------------------------------------------------------------------


def full_sizes() -> dict[str, Any]:
    return {
        "model": "smollm2",
        "tokens": 256,
        "batches": [1, 4, 16],
        "repeats": 10,
        "matmul_n": {"cuda": 8192, "cpu": 2048},
        "apmae_counts": [270, 2700],
        "apmae_repeats": 10,
        "build_scenarios": 48,
        "build_batch_size": 4,
        "api_repeats": 20,
        "min_section_s": {"forward": 20, "apmae": 5, "build": 30, "api": 15},
    }


def quick_sizes() -> dict[str, Any]:
    return {
        "model": "tiny-starcoder2",
        "tokens": 256,
        "batches": [1, 2, 4],
        "repeats": 2,
        "matmul_n": {"cuda": 1024, "cpu": 256},
        "apmae_counts": [16, 64],
        "apmae_repeats": 2,
        "build_scenarios": 8,
        "build_batch_size": 4,
        "api_repeats": 2,
        "min_section_s": {"forward": 2, "apmae": 1, "build": 3, "api": 2},
    }


# -- the report, the budget, one section ------------------------------------------------------------------


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Report:
    """The JSON document, rewritten atomically (temporary file + rename) every time something is measured."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.lock = threading.Lock()

    def write(self, timeout: float = -1) -> bool:
        if not self.lock.acquire(timeout=timeout):
            return False
        try:
            text = json.dumps(self.data, indent=2, default=str)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(text + "\n")
            os.replace(tmp, self.path)
            return True
        finally:
            self.lock.release()


class Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def deadline(self, share: float) -> float:
        """Monotonic time by which a section with this cumulative share must be done."""
        return self.started + share * self.seconds


class Skip(Exception):
    """A section cannot run (what it needs is missing): recorded as skipped, with the reason."""


class Section:
    """What a section function gets: its deadline, its results (written as they grow) and the device."""

    def __init__(
        self, name: str, deadline: float, device: Any, report: Report, entry: dict[str, Any]
    ) -> None:
        self.name = name
        self.deadline = deadline
        self.device = device
        self.report = report
        self.results: dict[str, Any] = entry.setdefault("results", {})
        self.truncated = False

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def out_of_time(self, need: float) -> bool:
        """True (and the section marked truncated) when less than `need` seconds are left."""
        if self.left() < need:
            self.truncated = True
            return True
        return False

    def skip(self, what: str, reason: str) -> None:
        self.truncated = True
        self.results.setdefault("skipped", {})[what] = reason
        self.save()

    def save(self) -> None:
        self.report.write()


def run_section(
    report: Report,
    budget: Budget,
    name: str,
    fn: Callable[[Section], None],
    *,
    share: float,
    min_seconds: float,
    device: Any,
) -> dict[str, Any]:
    """Run one section within its share of the budget; record its status, time, peak memory, error."""
    entry: dict[str, Any] = report.data["sections"].setdefault(name, {})
    deadline = budget.deadline(share)
    left = deadline - time.monotonic()
    if left < min_seconds:
        entry.update(
            status="skipped",
            reason=f"out of time: {max(left, 0):.1f} s of the budget left for this section (it must end by "
            f"{share:.0%} of {budget.seconds:.0f} s) and it needs at least {min_seconds:.0f} s",
        )
        report.write()
        return entry
    entry.update(status="running", started_at_s=round(budget.elapsed(), 2), time_allowed_s=round(left, 1))
    report.write()
    reset_peak(device)
    section = Section(name, deadline, device, report, entry)
    start = time.perf_counter()
    try:
        fn(section)
        entry["status"] = "partial" if section.truncated else "ok"
        if section.truncated:
            entry["reason"] = "out of time: the section's share of the budget ran out (see results.skipped)"
    except Skip as exc:
        entry.update(status="skipped", reason=str(exc))
    except (Exception, SystemExit) as exc:  # SystemExit: the bench_* helpers exit on a bad answer
        entry["status"] = "error"
        entry["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        entry["traceback"] = traceback.format_exc()[-6000:]
    try:
        sync(device)
    except Exception as exc:  # a failed kernel shows here: record it, keep going
        entry.setdefault("error", f"synchronize after the section: {type(exc).__name__}: {exc}")
    entry["seconds"] = round(time.perf_counter() - start, 3)
    entry.update(peak_memory(device))
    report.data["elapsed_s"] = round(budget.elapsed(), 2)
    report.data["summary"] = summary(report.data["sections"])
    report.write()
    return entry


def start_watchdog(report: Report, after_s: float) -> threading.Timer:
    """Write what was measured and end the process if the run is still going `after_s` from now."""

    def fire() -> None:
        report.data["status"] = "killed"
        report.data["killed_reason"] = (
            f"watchdog: still running {after_s:.0f} s after the start (budget plus grace); a call hung or "
            "overran"
        )
        for entry in report.data["sections"].values():
            if entry.get("status") in ("running", "pending"):
                entry["status"] = "killed" if entry["status"] == "running" else "skipped"
                entry.setdefault("reason", "the watchdog ended the run")
        for _ in range(3):
            try:
                if report.write(timeout=5):
                    break
            except RuntimeError:  # the main thread changed a dict while it was dumped: try again
                time.sleep(0.2)
        sys.stdout.flush()
        os._exit(3)

    timer = threading.Timer(after_s, fire)
    timer.daemon = True
    timer.start()
    return timer


# -- device helpers ---------------------------------------------------------------------------------------


def sync(device: Any) -> None:
    if device is not None and device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def reset_peak(device: Any) -> None:
    if device is not None and device.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: Any) -> dict[str, Any]:
    """Peak GPU memory since the last reset (allocated by tensors, reserved by the caching allocator), and
    the process's peak resident memory (never reset)."""
    row: dict[str, Any] = {
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    }
    if device is not None and device.type == "cuda":
        import torch

        row["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        row["peak_gpu_reserved_mib"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
    else:
        row["peak_gpu_memory_mib"] = None
    return row


def release(device: Any) -> None:
    gc.collect()
    if device is not None and device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


def stats_ms(times: list[float]) -> dict[str, Any]:
    from bench_api import percentile

    return {
        "n": len(times),
        "p50_ms": round(1000 * statistics.median(times), 3),
        "p95_ms": round(1000 * percentile(times, 0.95), 3),
        "min_ms": round(1000 * min(times), 3),
        "max_ms": round(1000 * max(times), 3),
    }


def repeat_timed(section: Section, call: Callable[[], object], repeats: int, label: str) -> list[float]:
    """`repeats` timed calls (device synchronised before and after each), fewer when the section's time
    runs short: one more call is started only with twice the slowest so far left."""
    times: list[float] = []
    for _ in range(repeats):
        if times and section.out_of_time(2 * max(times) + 0.5):
            section.skip(label, f"out of time after {len(times)} of {repeats} timed repeats")
            break
        sync(section.device)
        start = time.perf_counter()
        call()
        sync(section.device)
        times.append(time.perf_counter() - start)
    return times


# -- the machine ------------------------------------------------------------------------------------------


def first_line(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def command_output(*command: str) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=15, cwd=ROOT)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def describe_machine(device: Any) -> dict[str, Any]:
    import torch
    import transformers

    mem_kb = first_line("/proc/meminfo", "MemTotal")
    machine: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": first_line("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "git_commit": command_output("git", "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(command_output("git", "status", "--porcelain", "--untracked-files=no")),
    }
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        machine["gpu"] = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "count": torch.cuda.device_count(),
            "bf16_supported": torch.cuda.is_bf16_supported(),
            "cudnn": torch.backends.cudnn.version(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        }
        smi = command_output(
            "nvidia-smi", "--query-gpu=driver_version,name,memory.total,clocks.max.sm,power.limit",
            "--format=csv,noheader",
        )  # fmt: skip
        machine["gpu"]["nvidia_smi"] = smi
        machine["gpu"]["driver"] = smi.split(",")[0].strip() if smi else None
    return machine


def bf16_supported(device: Any) -> bool:
    import torch

    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return True  # torch's CPU kernels take bfloat16 (slowly on CPUs without bf16 instructions)


# -- forward ----------------------------------------------------------------------------------------------


def java_windows(model: Any, corpus: Path, count: int, tokens: int) -> tuple[list[list[int]], dict[str, Any]]:
    """`count` windows of `tokens` real Java tokens: one from the middle of each file long enough (files in
    the mining's seeded order), reused in turn if the corpus has fewer such files."""
    from attnlens.mining import iter_corpus

    windows: list[list[int]] = []
    files = 0
    for source in iter_corpus(corpus, max_file_bytes=1_000_000, shuffle_seed=0):
        files += 1
        ids = model.encode(source.text)
        if len(ids) >= tokens:
            start = (len(ids) - tokens) // 2
            windows.append(ids[start : start + tokens])
        if len(windows) >= count:
            break
    if not windows:
        raise RuntimeError(f"no file of {corpus} has {tokens} tokens")
    distinct = len(windows)
    windows = [windows[i % distinct] for i in range(count)]
    return windows, {"corpus": str(corpus), "files_read": files, "distinct_windows": distinct}


def forward_section(section: Section, args: argparse.Namespace) -> None:
    from bench_forward import matmul_rate

    from attnlens.model import TargetModel

    device = section.device
    section.results.update(model=args.model, tokens=args.tokens, batches=args.batches, repeats=args.repeats)
    windows: list[list[int]] | None = None
    for dtype in args.dtypes:
        if dtype == "bfloat16" and not bf16_supported(device):
            section.results[dtype] = {"skipped": f"{device} does not support bfloat16"}
            continue
        if section.out_of_time(5):
            section.skip(dtype, "out of time before loading the model")
            continue
        row: dict[str, Any] = {}
        section.results[dtype] = row
        start = time.perf_counter()
        model = TargetModel.load(args.model, models_dir=args.models_dir, device=str(device), dtype=dtype)
        sync(device)
        row["load_s"] = round(time.perf_counter() - start, 3)
        info = model.info
        row["model"] = {
            "name": info.name, "weights": info.weights, "dtype": info.dtype, "device": str(model.device),
            "n_params": info.n_params, "n_layers": info.n_layers, "n_heads": info.n_heads,
        }  # fmt: skip
        if windows is None:
            start = time.perf_counter()
            windows, source = java_windows(model, args.corpus, max(args.batches), args.tokens)
            section.results["windows"] = {**source, "seconds": round(time.perf_counter() - start, 3)}
        n = args.matmul_n
        rate = matmul_rate(device, model.model.dtype, n=n, repeats=10)
        floor = 2 * info.n_params * args.tokens / rate
        row["matmul"] = {"n": n, "tflops": round(rate / 1e12, 3)}
        row["flop_floor_ms_per_seq"] = round(1000 * floor, 4)
        row["batches"] = {}
        section.save()
        per_seq: float | None = None  # seconds a sequence took at the last batch size
        for batch in args.batches:
            # The warm-up and one repeat, guessed from the last batch size, with room for a worse than
            # linear cost (CPU: batch 16 took 2x the time per sequence of batch 4).
            need = 3.0 if per_seq is None else max(3.0, 4 * per_seq * batch)
            if section.out_of_time(need):
                section.skip(f"{dtype} batch {batch}", f"out of time (it would take about {need:.0f} s)")
                continue
            seqs = windows[:batch]
            reset_peak(device)
            sync(device)
            start = time.perf_counter()
            model.capture(seqs)  # warm-up; its time is the cold cost (kernels, allocator)
            sync(device)
            first = time.perf_counter() - start
            times = repeat_timed(section, lambda seqs=seqs, m=model: m.capture(seqs), args.repeats,
                                 f"{dtype} batch {batch} repeats")  # fmt: skip
            median = statistics.median(times) if times else first
            per_seq = median / batch
            row["batches"][str(batch)] = {
                "first_call_ms": round(1000 * first, 3),
                "repeats": len(times),
                "ms_per_batch": stats_ms(times) if times else None,
                "ms_per_seq_median": round(1000 * median / batch, 3),
                "tokens_per_s": round(batch * args.tokens / median, 1),
                "x_flop_floor": round(median / batch / floor, 2),
                **peak_memory(device),
            }
            section.save()
        del model
        release(device)


# -- AP-MAE -----------------------------------------------------------------------------------------------


def apmae_section(section: Section, args: argparse.Namespace) -> None:
    import torch
    from bench_apmae import causal_patterns

    from attnlens.apmae.load import load_apmae
    from attnlens.config import Settings

    device = section.device
    settings = Settings(apmae={"checkpoint": args.checkpoint, "device": device.type})
    start = time.perf_counter()
    apmae = load_apmae(settings)
    sync(device)
    params = sum(p.numel() for p in apmae.parameters())
    section.results.update(
        load_s=round(time.perf_counter() - start, 3),
        checkpoint=args.checkpoint,
        config={
            "source_length": apmae.config.source_length,
            "max_length": apmae.config.max_length,
            "patch_size": apmae.config.patch_size,
            "encoder_dim": apmae.config.encoder_dim,
            "encoder_layers": apmae.config.encoder_layers,
            "params_m": round(params / 1e6, 3),
        },  # fmt: skip
        dtype=str(next(apmae.parameters()).dtype),
        input="raw causal 256 x 256 float32 softmax patterns on the device (scaling and pooling timed)",
        counts={},
    )
    torch.manual_seed(0)
    size = apmae.config.source_length
    base = causal_patterns(min(args.apmae_counts), size).to(device)
    for count in args.apmae_counts:
        if section.out_of_time(2):
            section.skip(f"{count} patterns", "out of time")
            continue
        patterns = base.repeat(math.ceil(count / base.shape[0]), 1, 1)[:count].contiguous()
        reset_peak(device)
        sync(device)
        start = time.perf_counter()
        apmae.embed(patterns)  # warm-up, as the app calls it: one call for all of them
        sync(device)
        first = time.perf_counter() - start
        times = repeat_timed(section, lambda p=patterns, a=apmae: a.embed(p), args.apmae_repeats,
                             f"{count} repeats")  # fmt: skip
        prepare = repeat_timed(section, lambda p=patterns, a=apmae: a.prepare(p), 3, f"{count} prepare")
        median = statistics.median(times) if times else first
        section.results["counts"][str(count)] = {
            "first_call_ms": round(1000 * first, 3),
            "s_per_call": stats_ms(times) if times else None,
            "patterns_per_s": round(count / median, 1),
            "of_which_scaling_ms_p50": round(1000 * statistics.median(prepare), 3) if prepare else None,
            **peak_memory(device),
        }
        section.save()
        del patterns
    del base, apmae
    release(device)


# -- build ------------------------------------------------------------------------------------------------


def build_section(section: Section, args: argparse.Namespace, state: dict[str, Any]) -> None:
    from attnlens.atlas.build import BuildRequest, run_build
    from attnlens.atlas.indexing import sync_index
    from attnlens.config import Settings
    from attnlens.service.local import LocalWorker
    from attnlens.store import open_store

    device = section.device
    data_dir = Path(tempfile.mkdtemp(prefix="gpu-suite-")) / "data"
    data_dir.mkdir()
    state["tmp"] = data_dir.parent
    args.models_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "models").symlink_to(args.models_dir.resolve())  # the shared model cache: no conversion
    settings = Settings(
        data_dir=data_dir,
        model={"name": args.model, "device": device.type, "dtype": args.app_dtype},
        apmae={"checkpoint": args.checkpoint, "device": device.type},
        atlas={"batch_size": args.build_batch_size, "build_demo": False},
    )
    store = open_store(settings)
    worker = LocalWorker(settings, store)
    state["worker"] = worker
    start = time.perf_counter()
    worker.start(background=False)
    model, apmae = worker.model, worker.apmae  # raise now, with the reason, if either failed to load
    sync(device)
    per_task = math.ceil(args.build_scenarios / len(BUILD_TASKS))
    section.results.update(
        worker_load_s=round(time.perf_counter() - start, 3),
        model={"name": model.info.name, "dtype": model.info.dtype, "device": str(model.device)},
        apmae_checkpoint=args.checkpoint,
        corpus=str(args.corpus),
        tasks=list(BUILD_TASKS),
        per_task=per_task,
        batch_size=args.build_batch_size,
        data_dir=str(data_dir),
    )
    section.save()
    request = BuildRequest(
        corpus=str(args.corpus), tasks=BUILD_TASKS, per_task=per_task, batch_size=args.build_batch_size
    )
    marks: dict[str, float] = {}

    def progress(done: int, total: int, message: str) -> None:
        marks.setdefault("mined", time.perf_counter())  # the first call comes once mining is done
        section.results["progress"] = {"done": done, "total": total, "message": message}

    def should_stop() -> bool:
        # Leave time for the index sync; a batch of 4 on a GPU takes well under 5 s.
        return section.out_of_time(5)

    reset_peak(device)
    sync(device)
    start = time.perf_counter()
    report = run_build(
        settings, store, model, apmae.embed_with_errors, request, embedder=worker.embedder_name,
        progress=progress,
        should_stop=should_stop, run_model=worker.run_model,
    )  # fmt: skip
    sync(device)
    end = time.perf_counter()
    mined = marks.get("mined", start)
    built = report.to_dict()
    section.results["build"] = {
        "scenarios": report.scenarios,
        "processed": report.processed,
        "failed": report.failed,
        "failures": report.failures[:5],
        "cancelled_for_time": report.cancelled,
        "head_patterns": report.head_patterns,
        "seconds": round(report.seconds, 3),
        "mining_s": round(mined - start, 3),
        "s_per_inference_after_mining": round((end - mined) / max(report.processed, 1), 4),
        "inferences_per_minute": round(built["inferences_per_minute"], 1),
        "head_patterns_per_second": round(built["head_patterns_per_second"], 1),
        **peak_memory(device),
    }
    if report.cancelled:
        section.skip("build", f"stopped for time after {report.processed} of {report.scenarios} scenarios")
    start = time.perf_counter()
    index = sync_index(settings, store)
    section.results["index_sync"] = {
        "seconds": round(time.perf_counter() - start, 3),
        "added": index.get("added"),
        "vectors": index.get("vectors"),
        "rebuilt": index.get("rebuilt"),
    }
    if report.processed:
        state["atlas"] = (settings, store, worker)
    section.save()


# -- API --------------------------------------------------------------------------------------------------


def api_section(section: Section, args: argparse.Namespace, state: dict[str, Any]) -> None:
    from bench_api import Client, discover, operations
    from fastapi.testclient import TestClient

    from attnlens.api import create_app

    if "atlas" not in state:
        build = section.report.data["sections"].get("build", {})
        raise Skip(f"no atlas to serve: the build section stored no inference (build: {build.get('status')})")
    settings, store, worker = state["atlas"]
    client = Client("http://testserver", timeout=600)
    client.http.close()
    client.http = TestClient(create_app(settings, worker, store))
    inferences, patterns, names = discover(client)
    ops = operations(inferences, patterns, names, seed=0)
    rng = random.Random(1)
    ops["thumbnail"] = lambda: ("GET", f"/api/patterns/{rng.choice(patterns)}/thumbnail", None)
    # ablate_first takes a new inference for each call (and one for the warm-up; inferences[0] is the
    # one ablate_again ablates over and over).
    first_budget = len(inferences) - 2
    section.results.update(inferences_listed=len(inferences), patterns=len(patterns), kinds={})
    section.save()
    for kind in ("analyze", "ablate_first", "ablate_again", "neighbors", "thumbnail"):
        repeats = min(args.api_repeats, first_budget) if kind == "ablate_first" else args.api_repeats
        if repeats < 1:
            section.skip(kind, f"the atlas has {len(inferences)} inferences; ablate_first needs 3 or more")
            continue
        if section.out_of_time(3):
            section.skip(kind, "out of time")
            continue
        try:
            section.results["kinds"][kind] = api_kind(section, client, ops[kind], repeats, kind)
        except Exception as exc:
            section.results["kinds"][kind] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
            section.results.setdefault("errors", []).append(kind)
        section.save()
    if section.results.get("errors"):
        raise RuntimeError(f"requests failed: {', '.join(section.results['errors'])}")


def api_kind(section: Section, client: Any, make: Callable[[], tuple], repeats: int, kind: str) -> dict:
    def call() -> None:
        _, response = client.call(*make())
        if response.status_code != 200:
            raise RuntimeError(f"{kind}: HTTP {response.status_code} {response.text[:300]}")

    reset_peak(section.device)
    sync(section.device)
    start = time.perf_counter()
    call()  # warm-up: first-call costs (kNN assigners, caches) are not latency; recorded apart
    sync(section.device)
    first = time.perf_counter() - start
    times = repeat_timed(section, call, repeats, f"{kind} repeats")
    return {"first_call_ms": round(1000 * first, 3), **stats_ms(times), **peak_memory(section.device)}


# -- summary ----------------------------------------------------------------------------------------------


def summary(sections: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, flat, from whatever the sections measured."""
    out: dict[str, Any] = {}
    forward = sections.get("forward", {}).get("results", {})
    for dtype in ("float32", "bfloat16"):
        for batch, row in (forward.get(dtype, {}).get("batches") or {}).items():
            out[f"forward_{dtype}_batch{batch}_ms_per_seq"] = row.get("ms_per_seq_median")
    for count, row in (sections.get("apmae", {}).get("results", {}).get("counts") or {}).items():
        out[f"apmae_{count}_patterns_per_s"] = row.get("patterns_per_s")
    build = sections.get("build", {}).get("results", {}).get("build") or {}
    if build:
        out["build_s_per_inference_after_mining"] = build.get("s_per_inference_after_mining")
        out["build_head_patterns_per_s"] = build.get("head_patterns_per_second")
    for kind, row in (sections.get("api", {}).get("results", {}).get("kinds") or {}).items():
        if "p50_ms" in row:
            out[f"api_{kind}_p50_ms"] = row["p50_ms"]
    return out


# -- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON file (rewritten as figures come)")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--budget-s", type=float, default=480.0, help="the whole run, imports included")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and the tiny model (a smoke test)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset, in order")
    parser.add_argument("--model", default=None, help="preset (default: smollm2; --quick: tiny-starcoder2)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="forward section dtypes")
    parser.add_argument("--app-dtype", default="auto", help="build/API worker dtype (auto: bf16 on CUDA)")
    parser.add_argument("--checkpoint", default="default", help="AP-MAE checkpoint (default: shipped)")
    parser.add_argument("--corpus", type=Path, default=None, help="default: the JDK src.zip, else fixtures")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "data" / "models")
    parser.add_argument("--grace-s", type=float, default=None, help="watchdog grace after the budget")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary atlas")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's; --quick on a CPU: 1)"
    )
    args = parser.parse_args(argv)
    sizes = quick_sizes() if args.quick else full_sizes()
    for key, value in sizes.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.matmul_n = args.matmul_n["cuda" if args.device.startswith("cuda") else "cpu"]
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.corpus is None:
        args.corpus = JDK if JDK.is_file() and not args.quick else JAVA_FIXTURES
    if args.threads is None and args.quick and args.device == "cpu":
        args.threads = 1  # a smoke test on a shared CPU: one thread is steadier than an oversubscribed pool
    if args.grace_s is None:
        args.grace_s = max(10.0, 0.05 * args.budget_s)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = Budget(args.budget_s)
    report = Report(
        args.out,
        {
            "suite": "attnlens benchmarks/gpu_suite.py",
            "format_version": FORMAT_VERSION,
            "status": "running",
            "started_utc": now_utc(),
            "quick": args.quick,
            "budget_s": args.budget_s,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "sections": {name: {"status": "pending"} for name in SECTIONS},
        },
    )
    for name in SECTIONS:
        if name not in args.sections:
            report.data["sections"][name] = {"status": "skipped", "reason": "not asked for (--sections)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report.write()
    watchdog = start_watchdog(report, args.budget_s + args.grace_s)

    start = time.perf_counter()
    import torch

    import attnlens.model  # noqa: F401 - transformers and the rest: their import time is recorded here

    setup: dict[str, Any] = {"import_s": round(time.perf_counter() - start, 3)}
    if args.threads:
        torch.set_num_threads(args.threads)
    report.data["setup"] = setup
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        report.data["machine"] = describe_machine(torch.device("cpu"))
        for name in args.sections:
            report.data["sections"][name] = {"status": "skipped", "reason": "CUDA is not available here"}
        report.data["status"] = "no device"
        report.write()
        print(f"CUDA is not available; nothing measured ({args.out})", file=sys.stderr)
        return 2
    if device.type == "cuda":
        start = time.perf_counter()
        torch.cuda.init()
        torch.zeros(1, device=device)
        sync(device)
        setup["cuda_init_s"] = round(time.perf_counter() - start, 3)
    try:
        report.data["machine"] = describe_machine(device)
    except Exception as exc:  # a missing nvidia-smi field must not cost the run
        report.data["machine"] = {"error": f"{type(exc).__name__}: {exc}"}
    report.write()

    state: dict[str, Any] = {}
    runners: dict[str, Callable[[Section], None]] = {
        "forward": lambda s: forward_section(s, args),
        "apmae": lambda s: apmae_section(s, args),
        "build": lambda s: build_section(s, args, state),
        "api": lambda s: api_section(s, args, state),
    }
    try:
        for name in args.sections:
            entry = run_section(
                report, budget, name, runners[name], share=SHARES[name],
                min_seconds=args.min_section_s[name], device=device,
            )  # fmt: skip
            print(f"[{budget.elapsed():6.1f} s] {name}: {entry['status']}", file=sys.stderr, flush=True)
    finally:
        worker = state.get("worker")
        if worker is not None:
            worker.model_thread.shutdown()
        if state.get("tmp") and not args.keep_data:
            shutil.rmtree(state["tmp"], ignore_errors=True)
    watchdog.cancel()
    failed = [n for n, e in report.data["sections"].items() if e.get("status") == "error"]
    report.data.update(
        status="failed" if failed else "done",
        finished_utc=now_utc(),
        elapsed_s=round(budget.elapsed(), 2),
        summary=summary(report.data["sections"]),
    )
    report.write()
    print(json.dumps(report.data["summary"], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
