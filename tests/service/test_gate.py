"""The model gate: bounded concurrency and a bounded queue; overflow is refused at once."""

from __future__ import annotations

import threading
import time

import pytest

from attnlens.errors import Busy
from attnlens.service.gate import ModelGate


def test_gate_runs_n_queues_m_and_refuses_the_rest():
    gate = ModelGate(max_concurrent=1, max_queued=2, retry_after_s=3)
    release = threading.Event()
    running = []
    outcomes: list[str] = []

    def call(name: str) -> None:
        try:
            with gate.slot():
                running.append(name)
                release.wait(5)
            outcomes.append(f"ran {name}")
        except Busy as exc:
            outcomes.append(f"busy {exc.retry_after}")

    threads = [threading.Thread(target=call, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while gate.waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(running) == 1 and gate.waiting == 2
    with pytest.raises(Busy, match="busy"), gate.slot():
        pass
    release.set()
    for t in threads:
        t.join(5)
    assert sorted(outcomes) == ["ran t0", "ran t1", "ran t2"]


def test_zero_queue_still_runs_when_free():
    gate = ModelGate(max_concurrent=1, max_queued=0)
    with gate.slot():
        with pytest.raises(Busy), gate.slot():
            pass
    with gate.slot():
        pass
