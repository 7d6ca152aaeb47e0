"""The in-process worker runs every model call on one thread: ablation hooks never reach another call,
and un-ablated baselines are reused."""

from __future__ import annotations

import threading

import pytest
import torch

from attnlens.heads import HeadRef
from attnlens.service.local import LocalWorker
from tests.conftest import tiny_settings

JAVA = "public static int max(int a, int b) {\n    return a >= b ? a : b;\n}\n" * 3


@pytest.fixture(scope="module")
def worker(tmp_path_factory, tiny_apmae_folder):
    settings = tiny_settings(tmp_path_factory.mktemp("worker") / "data", tiny_apmae_folder)
    worker = LocalWorker(settings)
    worker.start(background=False)
    yield worker
    worker.model_thread.shutdown()


@pytest.fixture(scope="module")
def prompt(worker) -> list[int]:
    return worker.model.encode(JAVA)[:40]


def test_model_calls_from_any_thread_run_on_the_model_thread(worker):
    names: list[str] = []

    def call() -> None:
        names.append(worker.run_model(lambda: threading.current_thread().name))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    call()
    assert len(set(names)) == 1 and names[0].startswith("attnlens-model")
    # Re-entrant: a call made from the model thread runs there directly instead of waiting for itself.
    assert worker.run_model(lambda: worker.run_model(lambda: threading.current_thread().name)) == names[0]


def test_an_ablation_never_leaks_into_a_concurrent_forward(worker, prompt):
    """A job's forward pass next to interactive ablations of every head must see the intact model. With
    the model called from both threads directly, the hooks of one reach the other and this fails."""
    model = worker.model
    every_head = [
        HeadRef(layer, h) for layer in range(model.info.n_layers) for h in range(model.info.n_heads)
    ]
    expected = model.next_token_logits_batch([prompt])
    stop = threading.Event()
    errors: list[BaseException] = []

    def ablate_repeatedly() -> None:
        try:
            while not stop.is_set():
                worker.ablate(prompt, every_head, max_new_tokens=4, expected_token_id=None)
        except BaseException as exc:  # surfaced below: a failure in the thread must fail the test
            errors.append(exc)
            stop.set()

    ablating = threading.Thread(target=ablate_repeatedly)
    ablating.start()
    try:
        for _ in range(40):
            got = worker.run_model(model.next_token_logits_batch, [prompt])
            assert torch.equal(got, expected)
    finally:
        stop.set()
        ablating.join()
    assert not errors


def test_ablations_of_one_prompt_reuse_its_baseline(worker, prompt):
    first = worker.ablate(prompt, [HeadRef(0, 1)], max_new_tokens=6, expected_token_id=prompt[5])
    nothing = worker.ablate(prompt, [], max_new_tokens=6, expected_token_id=prompt[5])
    direct = worker.run_model(worker.model.generate, prompt, 6)
    assert first.baseline_ids == nothing.baseline_ids == nothing.ablated_ids == direct.new_ids
    assert nothing.kl_at_hole == 0.0 and not nothing.changed
    assert first.p_expected_baseline == nothing.p_expected_baseline
    # Another budget is another baseline.
    shorter = worker.ablate(prompt, [HeadRef(0, 1)], max_new_tokens=3, expected_token_id=None)
    assert shorter.baseline_ids == direct.new_ids[:3] or len(shorter.baseline_ids) < 3
