"""`ModelThread`: one long-lived thread that runs every call on the target model and AP-MAE in a worker.

Why one thread, not the web server's thread pool:
- Head ablation installs forward hooks on the shared model (`attnlens.model.ablation`). A forward pass in
  another thread while they are installed would be ablated too: an atlas build batch running next to an
  interactive ablation would store patterns of the ablated model. On one thread, calls cannot overlap.
- On CPU, each thread that runs torch ops gets its own OpenMP team. Once teams hold more threads than
  there are cores, libgomp stops spinning between parallel regions, and every op pays a thread wake-up:
  ablate-and-regenerate (two 16-token SmolLM2 generations) took 1.5-1.65 s while one thread had used
  torch and 1.85-2.0 s on every thread once a second one had, on our 2-core machine (docs/benchmarks.md,
  "API latency").

Calls queue in order: an interactive request waits for at most the one call running (a build batch, an
ablation), and the API's `ModelGate` still bounds how many may wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ModelThread:
    """`run(fn, *args)` runs `fn` on the model thread and returns its result (or raises its exception)."""

    def __init__(self, name: str = "attnlens-model") -> None:
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=self._mark)

    def _mark(self) -> None:
        self._local.on_model_thread = True

    def on_model_thread(self) -> bool:
        return getattr(self._local, "on_model_thread", False)

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue `fn`; the caller does not wait (used to load the models in the background)."""
        return self._executor.submit(fn, *args, **kwargs)

    def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` on the model thread and wait for it. Called from the model thread itself, it runs
        `fn` directly (waiting for itself would deadlock)."""
        if self.on_model_thread():
            return fn(*args, **kwargs)
        return self._executor.submit(fn, *args, **kwargs).result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
