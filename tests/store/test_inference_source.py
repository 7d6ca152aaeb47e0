"""Pasted code is kept apart from the atlas: a `source` per inference, analyses and counts read only mined
rows, pasted rows are listed by source and can be deleted (mined ones cannot)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from attnlens.errors import InsufficientData, InvalidInput, NotFound
from attnlens.heads import HeadRef
from attnlens.store import Store, open_store, save_scenarios
from attnlens.store.analysis_rows import (
    Selection,
    choose_selection,
    iter_selection_embeddings,
    load_head_rows,
    load_task_rows,
    selected_heads,
    task_names,
)
from attnlens.store.inferences import (
    InferenceFilter,
    atlas_counts,
    delete_pasted_inference,
    list_inferences,
    task_counts,
)
from attnlens.store.models import (
    Cluster,
    ClusterAssignment,
    Clustering,
    CorpusFile,
    HeadPattern,
    Inference,
    MapPoint,
    PatternMap,
    Scenario,
)
from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference
from tests.store.fake_atlas import FakeScenario, fill_atlas

REFS = [HeadRef(layer, head) for layer in range(2) for head in range(3)]


def add_paste(
    store: Store, *, n: int, task: str = "identifier", model: str = "tiny"
) -> tuple[int, list[int]]:
    """A pasted inference as the paste flow stores it (a scenario of corpus `pasted`, alignment `pasted`,
    source `pasted`) with the heads of `fill_atlas`; returns (inference id, head pattern ids)."""
    rng = np.random.default_rng(100 + n)
    scenario = FakeScenario(
        "pasted", f"pasted/{n:012x}.java", f"{n + 1000:064x}", task, "identifier", 3, 5, "ab", [7],
        list(range(16)), alignment="pasted",
    )  # fmt: skip
    with store.session() as session:
        (scenario_id,) = save_scenarios(session, [scenario], model_name=model)
        inference_id = save_inference(
            session, model_name=model, scenario_id=scenario_id, completion_text="ab", completion_ids=[7],
            first_token_correct=True, span_correct=True, expected_token_prob=0.9, source="pasted",
        )  # fmt: skip
        ids = save_head_patterns(
            session,
            inference_id,
            REFS,
            rng.standard_normal((len(REFS), 32)).astype(np.float32),
            np.tril(rng.integers(0, 256, (len(REFS), 8, 8))).astype(np.uint8),
            {name: rng.random(len(REFS)) for name in STAT_COLUMNS},
        )
    return inference_id, ids


@pytest.fixture
def mixed(settings):
    """A fake atlas (20 inferences, 15 of model `tiny` with scenarios) and two pastes of `tiny`."""
    store = open_store(settings)
    atlas = fill_atlas(store, n_inferences=20)
    pastes = [add_paste(store, n=1), add_paste(store, n=2, task="selection")]
    return store, atlas, pastes


def test_save_inference_refuses_an_unknown_source(settings):
    store = open_store(settings)
    with pytest.raises(InvalidInput, match="source"), store.session() as session:
        save_inference(session, model_name="m", prompt_ids=[1, 2], source="scraped")


def test_analyses_select_only_mined_rows(mixed):
    store, atlas, pastes = mixed
    pasted_ids = {i for _, ids in pastes for i in ids}
    mined_tiny = set(atlas.pattern_ids[(atlas.models == "tiny")].tolist())
    with store.session() as session:
        selection = choose_selection(session, "tiny")
        assert selection == Selection("tiny", None)
        seen = {int(i) for ids, _ in iter_selection_embeddings(session, selection) for i in ids}
        assert seen == mined_tiny and not seen & pasted_ids
        assert task_names(session, selection) == ["closing_bracket", "identifier"]  # no `selection` task
        assert selected_heads(session, selection) == REFS
        rows = load_head_rows(session, selection, REFS[0])
        assert not set(rows.pattern_ids.tolist()) & pasted_ids and len(rows.pattern_ids) == 15
        task_rows = load_task_rows(session, selection, "identifier", clustering_id=0, heads=REFS)
        assert pastes[0][0] not in set(task_rows.inference_ids.tolist())
        # No clustering 0: every row is dropped for want of labels, and the count says which rows were read.
        n_identifier = int(((atlas.models == "tiny") & (atlas.tasks == "identifier")).sum()) // len(REFS)
        assert task_rows.dropped == n_identifier


def test_pasted_code_alone_is_no_atlas(settings):
    store = open_store(settings)
    add_paste(store, n=3)
    with store.session() as session, pytest.raises(InsufficientData, match="no inferences of model 'tiny'"):
        choose_selection(session, "tiny")


def test_task_and_atlas_counts_keep_pasted_apart(mixed):
    store, atlas, pastes = mixed
    with store.session() as session:
        counts = task_counts(session, "tiny")
    tiny = atlas.models == "tiny"
    mined_identifiers = int((tiny & (atlas.tasks == "identifier")).sum()) // len(REFS)
    assert counts["identifier"].inferences == mined_identifiers
    assert counts["identifier"].pasted == 1
    assert (counts["selection"].inferences, counts["selection"].pasted) == (0, 1)
    totals = atlas_counts(store)
    n_atlas_inferences = len(atlas.pattern_ids) // len(REFS)
    assert totals["inferences"] == n_atlas_inferences and totals["pasted_inferences"] == 2
    assert totals["head_patterns"] == len(atlas.pattern_ids)
    assert totals["pasted_head_patterns"] == 2 * len(REFS)
    assert totals["scenarios"] == 20  # the fake atlas's; the pastes' two are not the atlas's
    right = int(atlas.correct[:: len(REFS)].sum())
    assert totals["inferences_first_token_correct"] == right


def test_list_says_and_filters_by_source(mixed):
    store, atlas, pastes = mixed
    with store.session() as session:
        total, rows = list_inferences(session, InferenceFilter(source="pasted"), limit=50, offset=0)
        assert total == 2 and {r.id for r in rows} == {p[0] for p in pastes}
        assert {r.source for r in rows} == {"pasted"}
        total, rows = list_inferences(session, InferenceFilter(source="mined"), limit=50, offset=0)
        assert total == len(atlas.pattern_ids) // len(REFS) and {r.source for r in rows} == {"mined"}


def test_delete_removes_a_paste_with_its_patterns_assignments_points_scenario_and_file(mixed):
    store, atlas, pastes = mixed
    (inference_id, ids), (other_id, other_ids) = pastes
    with store.session() as session:  # an analysis that (wrongly, as before) took the paste in
        clustering = Clustering(model_name="tiny", embedder=None, parameters={"complete": True})
        pattern_map = PatternMap(name="m", parameters={"complete": True, "model": "tiny"})
        session.add_all([clustering, pattern_map])
        session.flush()
        session.add(Cluster(clustering_id=clustering.id, layer=0, head=0, label=0, size=2,
                            medoid_head_pattern_id=ids[0], attributes={}))  # fmt: skip
        for pid in [*ids, int(atlas.pattern_ids[0])]:
            session.add(ClusterAssignment(clustering_id=clustering.id, head_pattern_id=pid, label=0))
            session.add(
                MapPoint(pattern_map_id=pattern_map.id, head_pattern_id=pid, x=0.0, y=0.0, fitted=True)
            )
        scenario_id = session.get(Inference, inference_id).scenario_id
        file_id = session.get(Scenario, scenario_id).corpus_file_id
    assert sorted(delete_pasted_inference(store, inference_id)) == sorted(ids)
    with store.session() as session:
        assert session.get(Inference, inference_id) is None
        assert session.scalar(select(func.count()).where(HeadPattern.id.in_(ids))) == 0
        assert session.scalar(select(func.count()).where(ClusterAssignment.head_pattern_id.in_(ids))) == 0
        assert session.scalar(select(func.count()).where(MapPoint.head_pattern_id.in_(ids))) == 0
        assert session.scalar(select(func.count()).select_from(ClusterAssignment)) == 1  # the mined one
        assert session.scalar(select(Cluster.medoid_head_pattern_id)) is None
        assert session.get(Scenario, scenario_id) is None and session.get(CorpusFile, file_id) is None
        assert session.get(Inference, other_id) is not None  # the other paste stays
        assert session.scalar(select(func.count()).where(HeadPattern.id.in_(other_ids))) == len(REFS)
    with pytest.raises(NotFound):
        delete_pasted_inference(store, inference_id)


def test_mined_rows_cannot_be_deleted(mixed):
    store, atlas, _ = mixed
    with store.session() as session:
        mined = session.scalar(select(Inference.id).where(Inference.source == "mined").limit(1))
    with pytest.raises(InvalidInput, match="only pasted code can be deleted; mined rows belong to the atlas"):
        delete_pasted_inference(store, mined)
    with store.session() as session:
        assert session.get(Inference, mined) is not None
        assert session.scalar(select(func.count()).select_from(HeadPattern)) == len(atlas.pattern_ids) + 12
    with pytest.raises(NotFound):
        delete_pasted_inference(store, 10**9)
