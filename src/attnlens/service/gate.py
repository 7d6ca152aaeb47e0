"""A bounded gate in front of the models: at most N calls run, at most M wait; the rest get `Busy`
(503 with Retry-After) at once instead of piling up threads or hanging."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from attnlens.errors import Busy


class ModelGate:
    """`with gate.slot(): ...` around every model call."""

    def __init__(
        self, max_concurrent: int, max_queued: int, *, wait_timeout_s: float = 120.0, retry_after_s: int = 2
    ) -> None:
        self._running = threading.Semaphore(max_concurrent)
        self._lock = threading.Lock()
        self._waiting = 0
        self.max_queued = max_queued
        self.wait_timeout_s = wait_timeout_s
        self.retry_after_s = retry_after_s

    @property
    def waiting(self) -> int:
        return self._waiting

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._running.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self.max_queued:
                    raise Busy(
                        f"the model is busy ({self._waiting} requests already waiting); "
                        f"retry in {self.retry_after_s} s.",
                        retry_after=self.retry_after_s,
                    )
                self._waiting += 1
            try:
                got = self._running.acquire(timeout=self.wait_timeout_s)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not got:
                raise Busy(
                    f"waited {self.wait_timeout_s:.0f} s for the model without a turn; retry later.",
                    retry_after=self.retry_after_s,
                )
        try:
            yield
        finally:
            self._running.release()
