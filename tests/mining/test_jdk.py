"""Mining the real JDK sources (openjdk-17-source's src.zip).

Properties on random files, and a 1,000-file run."""

from __future__ import annotations

import hashlib
import zipfile
from collections import Counter
from itertools import islice

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlens.config import Settings
from attnlens.mining import TASKS, MiningStats, SourceFile, iter_corpus, mine_scenarios
from tests.conftest import JDK_SRC_ZIP
from tests.mining.checks import check_scenario
from tests.mining.conftest import needs_jdk

pytestmark = [pytest.mark.corpus, needs_jdk]


@pytest.fixture(scope="module")
def jdk_names() -> list[str]:
    with zipfile.ZipFile(JDK_SRC_ZIP) as bundle:
        return sorted(n for n in bundle.namelist() if n.endswith(".java"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pick=st.integers(0, 10**9),
    seed=st.integers(0, 2**31),
    use_fim=st.booleans(),
    context=st.sampled_from([64, 256]),
)
def test_property_jdk_windows_and_targets_match_the_source(
    jdk_names, tiny_table, tiny_fim, pick, seed, use_fim, context
):
    name = jdk_names[pick % len(jdk_names)]
    with zipfile.ZipFile(JDK_SRC_ZIP) as bundle:
        raw = bundle.read(name)
    file = SourceFile(
        path=name, text=raw.decode("utf-8"), sha256=hashlib.sha256(raw).hexdigest(), corpus="jdk"
    )
    fim = tiny_fim if use_fim else None
    scenarios = mine_scenarios(
        [file], tokenizer=tiny_table, fim=fim, tasks=TASKS, per_task=1, context_tokens=context, seed=seed
    )
    for scenario in scenarios:
        check_scenario(scenario, raw, tiny_table, fim)


@pytest.mark.slow
def test_a_thousand_jdk_files_give_every_task_and_the_counts_are_stored(tmp_path, smollm2_table):
    from sqlalchemy import func, select

    from attnlens.store import open_store, save_scenarios
    from attnlens.store.models import Scenario as ScenarioRow

    stats = MiningStats()
    files = islice(iter_corpus(JDK_SRC_ZIP, max_file_bytes=1_000_000, stats=stats, shuffle_seed=0), 1000)
    sources = {}

    def remember(stream):
        for file in stream:
            sources[file.path] = file.text.encode()
            yield file

    scenarios = list(
        mine_scenarios(
            remember(files), tokenizer=smollm2_table, fim=None, tasks=TASKS, per_task=10**9, stats=stats
        )
    )
    assert stats.files_mined == 1000
    made = Counter(s.task for s in scenarios)
    assert set(made) == set(TASKS) and stats.scenarios == made
    for scenario in scenarios[::25]:
        check_scenario(scenario, sources[scenario.file_path], smollm2_table, None)

    store = open_store(Settings(data_dir=tmp_path / "data"))
    try:
        with store.session() as session:
            ids = save_scenarios(session, scenarios, model_name="smollm2")
        assert len(set(ids)) == len(scenarios)
        with store.session() as session:
            rows = dict(
                session.execute(select(ScenarioRow.task, func.count()).group_by(ScenarioRow.task)).all()
            )
        assert rows == dict(made)
    finally:
        store.dispose()
