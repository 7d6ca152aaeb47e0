"""The atlas build on real parts: tiny StarCoder2, tiny AP-MAE, SQLite on disk; resumable."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from attnlens.apmae.load import load_apmae
from attnlens.atlas.build import BuildRequest, run_build
from attnlens.store import open_store
from attnlens.store.codecs import unpack_embedding, unpack_token_ids
from attnlens.store.models import HeadPattern, Inference, Scenario
from tests.conftest import JAVA_FIXTURES, TINY_TASKS, tiny_settings


def test_tiny_atlas_has_every_head_of_every_inference(tiny_atlas):
    settings, store, report = tiny_atlas
    assert report.failed == 0 and report.processed == report.scenarios == 3 * len(TINY_TASKS)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Inference)) == report.processed
        assert s.scalar(select(func.count()).select_from(HeadPattern)) == report.processed * 16
        for inference in s.scalars(select(Inference)):
            assert len(inference.head_patterns) == 16
            assert {p.head_ref.name for p in inference.head_patterns} == {
                f"L{a}H{b}" for a in range(4) for b in range(4)
            }
            assert unpack_embedding(inference.head_patterns[0].embedding).shape == (32,)
            target = unpack_token_ids(inference.scenario.target_ids)
            completion = unpack_token_ids(inference.completion_ids)
            assert inference.span_correct == (completion == target)
            if inference.span_correct:
                assert inference.first_token_correct
            assert inference.first_token_correct == (completion[:1] == target[:1])
            assert 0.0 <= inference.expected_token_prob <= 1.0
            # The model's confidence at the hole is stored for the baseline, and is that of its greedy token.
            assert 0.0 < inference.top1_prob <= 1.0 and 0.0 <= inference.top1_margin <= inference.top1_prob
            assert inference.next_token_entropy >= 0.0
            if inference.first_token_correct:
                assert inference.top1_prob == pytest.approx(inference.expected_token_prob)
            else:
                assert inference.top1_prob >= inference.expected_token_prob


def test_built_inferences_are_mined(tiny_atlas):
    """`write_processed` marks a build's rows `mined` (the atlas's own; pasted code says `pasted`)."""
    _, store, report = tiny_atlas
    built = select(Scenario.id).where(Scenario.alignment != "pasted")  # pastes other tests may have added
    with store.session() as s:
        sources = s.execute(
            select(Inference.source, func.count())
            .where(Inference.scenario_id.in_(built))
            .group_by(Inference.source)
        ).all()
    assert dict(sources) == {"mined": report.processed}


def _snapshot(store):
    """Everything a build decides, keyed by what identifies a scenario (ids may differ between stores)."""
    with store.session() as s:
        rows = s.execute(
            select(Scenario.task, Scenario.hole_start, Scenario.hole_end, Inference.completion_ids,
                   Inference.first_token_correct, HeadPattern.layer, HeadPattern.head, HeadPattern.embedding)
            .join(Inference, Inference.scenario_id == Scenario.id)
            .join(HeadPattern, HeadPattern.inference_id == Inference.id)
        ).all()  # fmt: skip
    return sorted((r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows)


class _StopAfter:
    def __init__(self, batches: int) -> None:
        self.calls, self.batches = 0, batches

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.batches


def test_interrupted_build_resumes_to_the_same_atlas(tmp_path, tiny_model, tiny_apmae_folder, tiny_atlas):
    _, reference_store, reference = tiny_atlas
    settings = tiny_settings(tmp_path / "data", tiny_apmae_folder)
    store = open_store(settings)
    embed = load_apmae(settings).embed_with_errors
    request = BuildRequest(corpus=str(JAVA_FIXTURES), tasks=TINY_TASKS, per_task=3, batch_size=3)
    first = run_build(
        settings, store, tiny_model, embed, request, embedder="tiny-apmae", should_stop=_StopAfter(2)
    )
    assert first.cancelled and first.processed == 6
    second = run_build(settings, store, tiny_model, embed, request, embedder="tiny-apmae")
    assert second.already_done == 6 and second.processed == reference.processed - 6
    third = run_build(settings, store, tiny_model, embed, request, embedder="tiny-apmae")
    assert third.processed == 0 and third.already_done == reference.processed
    mine, theirs = _snapshot(store), _snapshot(reference_store)
    assert len(mine) == len(theirs) == reference.processed * 16
    for a, b in zip(mine, theirs, strict=True):
        assert a[:7] == b[:7]
        np.testing.assert_allclose(unpack_embedding(a[7]), unpack_embedding(b[7]), atol=2e-3)


def test_storing_mined_scenarios_survives_another_process_committing_meanwhile(
    tmp_path, tiny_model, tiny_apmae_folder
):
    """Another process (a paste) commits while the build stores its scenarios. With a deferred transaction
    the build had read first, and SQLite refused its write at once, "database is locked", with no busy
    wait (CI saw it in the writers-meet test). The build now holds the write lock from the start: the other
    writer waits for it instead."""
    import sqlite3

    from sqlalchemy import event

    from attnlens.atlas.build import mine_and_save

    settings = tiny_settings(tmp_path / "data", tiny_apmae_folder)
    store = open_store(settings)
    database = settings.data_dir / "attnlens.db"
    with sqlite3.connect(database) as other:
        other.execute("CREATE TABLE elsewhere (x INTEGER)")
    outcome: list[str] = []

    def before_insert(conn, cursor, statement, *args) -> None:
        if outcome or not statement.lstrip().upper().startswith("INSERT"):
            return
        other = sqlite3.connect(database, timeout=0.2)  # another process's paste, in short
        try:
            other.execute("INSERT INTO elsewhere VALUES (1)")
            other.commit()
            outcome.append("the other writer committed in the middle")
        except sqlite3.OperationalError as exc:
            outcome.append(f"the other writer waited: {exc}")
        finally:
            other.close()

    event.listen(store.engine, "before_cursor_execute", before_insert)
    request = BuildRequest(corpus=str(JAVA_FIXTURES), tasks=("identifiers",), per_task=2, batch_size=2)
    saved, _ = mine_and_save(settings, store, tiny_model, request)
    assert len(saved) == 2
    assert outcome == ["the other writer waited: database is locked"]
