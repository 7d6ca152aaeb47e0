"""The head-scores backfill: on a copy of the tiny atlas with its scores wiped (as an atlas built before
they existed), the job recomputes exactly what the build stored, resumes where it stopped, and leaves
profiles of unscored inferences out."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from sqlalchemy import select, update

from attnlens.analysis.head_profiles import head_profiles
from attnlens.atlas.score_backfill import backfill_head_scores
from attnlens.contracts.head_scores import HEAD_SCORES_VERSION, RELATIONAL_SCORE_NAMES
from attnlens.store import open_store
from attnlens.store.head_scores import count_without_scores, load_score_table
from attnlens.store.models import HeadPattern, Inference

# What the build stores and the backfill recomputes: the relational scores, then the reconstruction error.
COLUMNS = [*(getattr(HeadPattern, name) for name in RELATIONAL_SCORE_NAMES), HeadPattern.reconstruction_error]


@pytest.fixture
def wiped_atlas(tiny_atlas, tmp_path):
    """A private copy of the tiny atlas whose relational scores, reconstruction errors and versions are
    NULL (rows built before migration 0004), and what the build had stored."""
    settings, _, _ = tiny_atlas
    data = tmp_path / "data"
    data.mkdir()
    with (
        sqlite3.connect(settings.data_dir / "attnlens.db") as source,
        sqlite3.connect(data / "attnlens.db") as copy,
    ):
        source.backup(copy)
    mine = settings.model_copy(update={"data_dir": data})
    store = open_store(mine)
    before = _scores(store)
    with store.session() as session:
        session.execute(update(HeadPattern).values({column.key: None for column in COLUMNS}))
        session.execute(update(Inference).values(head_scores_version=None))
    return store, before


def _scores(store) -> dict[int, tuple]:
    with store.session() as session:
        return {row[0]: row[1:] for row in session.execute(select(HeadPattern.id, *COLUMNS))}


def test_the_build_stores_scores_and_some_do_not_apply(tiny_atlas):
    _, store, _ = tiny_atlas
    with store.session() as session:
        versions = set(session.scalars(select(Inference.head_scores_version)))
    assert versions == {HEAD_SCORES_VERSION}
    values = np.array([[np.nan if v is None else v for v in row] for row in _scores(store).values()])
    # Every relational score applies somewhere in the fixtures, and every value is a share of attention.
    applies = ~np.isnan(values)
    assert applies.any(axis=0).all()
    errors = values[:, -1]
    assert applies[:, -1].all() and (errors >= 0).all() and np.unique(errors).size > 1
    scores = values[:, :-1][applies[:, :-1]]
    assert (scores >= 0).all() and (scores <= 1 + 1e-5).all()


def test_backfill_recomputes_what_the_build_stored_and_resumes(wiped_atlas, tiny_model, tiny_apmae_folder):
    from attnlens.apmae.load import load_apmae

    store, before = wiped_atlas
    apmae = load_apmae(tiny_apmae_folder)
    # The name the tiny atlas's build stored as its embedder: errors are measured for matching rows only.
    embedder = str(tiny_apmae_folder.resolve())
    measure = {"embed": apmae.embed_with_errors, "embedder": embedder}
    with store.session() as session:
        missing, total = count_without_scores(session, tiny_model.info.name)
        assert missing == total > 2
        # Unscored inferences are left out of profiles, not read as "does not apply".
        assert load_score_table(session, tiny_model.info.name).n_patterns == 0
    first = backfill_head_scores(store, tiny_model, limit=2, **measure)
    assert first.scored == first.with_errors == 2 and first.remaining == total - 2
    rest = backfill_head_scores(store, tiny_model, **measure)
    assert rest.scored == total - 2 and rest.remaining == 0
    after = _scores(store)
    assert after.keys() == before.keys()
    for pattern_id, values in before.items():
        for was, now in zip(values, after[pattern_id], strict=True):
            assert (was is None) == (now is None), pattern_id
            if was is not None:
                assert now == pytest.approx(was, abs=1e-5)
    # A third run has nothing to do.
    assert backfill_head_scores(store, tiny_model, **measure).scored == 0


def test_backfill_leaves_errors_of_another_checkpoint_unmeasured(wiped_atlas, tiny_model, tiny_apmae_folder):
    from attnlens.apmae.load import load_apmae

    store, _ = wiped_atlas
    apmae = load_apmae(tiny_apmae_folder)
    report = backfill_head_scores(store, tiny_model, embed=apmae.embed_with_errors, embedder="another-apmae")
    assert report.scored > 0 and report.with_errors == 0
    with store.session() as session:
        assert (
            session.scalar(select(HeadPattern.id).where(HeadPattern.reconstruction_error.is_not(None)))
            is None
        )


def test_profiles_cover_every_head_with_deciles(tiny_atlas, tiny_model):
    _, store, _ = tiny_atlas
    with store.session() as session:
        table = load_score_table(session, tiny_model.info.name)
    profiles = head_profiles(table)
    info = tiny_model.info
    assert len(profiles.heads) == info.n_layers * info.n_heads
    assert profiles.n_inferences == len(set(table.inference_ids.tolist()))
    for profile in profiles.heads.values():
        entropy = profile.scores["entropy"]
        assert entropy.n_applicable == profile.n_patterns
        assert entropy.deciles is not None and list(entropy.deciles) == sorted(entropy.deciles)
        # The median of a head is the median of its own stored values.
        own = table.scores["entropy"][(table.layer == profile.head.layer) & (table.head == profile.head.head)]
        assert entropy.median == pytest.approx(float(np.median(own)))
