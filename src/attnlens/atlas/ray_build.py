"""The atlas build on a Ray cluster (`attnlens atlas build --engine ray`): the same atlas as the local build
(`attnlens.atlas.build`), made by many processes on many machines.

- Mining runs as Ray CPU tasks, each mining a group of the task names (as many groups as free CPUs): a
  scenario depends only on (seed, file, task) and each task keeps its own count, so mining the tasks apart
  yields exactly the scenarios of one run over all of them (`mine_scenarios`). The driver stores them
  (idempotent, as in the local build).
- The target model and AP-MAE live together in `BuildActor`s (one per GPU, or a few on CPUs): the raw
  (layers x heads x 256 x 256) patterns never leave the process that made them. Each actor writes its
  batch's inferences and head patterns straight into the shared database, one transaction per inference.
- A scenario is done exactly when its inference row exists (unique per scenario and model), so a batch may
  run twice without harm: an actor skips what is stored and the unique key refuses a second copy. A killed
  actor is restarted by Ray and its batches are retried (`max_restarts`, `max_task_retries`); an actor
  gone for good has its batches handed to the others. Nothing is lost, nothing stored twice.
- Cancel and progress go through the job row, as for every job. The FAISS index is synced from the
  database by the job (`attnlens.atlas.build_job`), in chunks, after the build.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from attnlens.atlas.build import BuildReport, BuildRequest, ProgressFn
from attnlens.atlas.ray_workers import BatchOutcome, BuildActor, mine_tasks, task_groups
from attnlens.config import Settings
from attnlens.errors import InvalidInput, ModelUnavailable, StoreError
from attnlens.mining import MiningStats, Scenario
from attnlens.store import Store, save_scenarios
from attnlens.store.inferences import scenarios_without_inference

if TYPE_CHECKING:
    from attnlens.contracts.models import FimTokens
    from attnlens.model.target import ModelInfo

log = logging.getLogger(__name__)

# Ray restarts a dead actor this many times and retries each of its calls as often; past that, the driver
# hands the actor's batches to the others.
ACTOR_RESTARTS = 2


@dataclass(frozen=True)
class RayPlan:
    """Where and how wide a Ray build runs.

    `address` None starts a Ray instance on this machine only (every CPU; SQLite is fine then);
    `auto` joins the cluster this machine is part of; `ray://host:10001` connects a client to one.
    `actors` None: one per GPU of the cluster when `gpus_per_actor` > 0, else one.
    `gpus_per_actor` None: 1 when the cluster has GPUs, else 0 (the model runs on the actor's CPUs).
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = None
    batches_in_flight: int = 2  # per actor: the next batch waits in the actor while one runs

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> RayPlan:
        """The plan a job's parameters describe (made and checked by
        `attnlens.contracts.job_parameters.engine_parameters`)."""
        return cls(
            address=parameters.get("address"),
            actors=parameters.get("actors"),
            cpus_per_actor=float(parameters.get("cpus_per_actor", 1.0)),
            gpus_per_actor=parameters.get("gpus_per_actor"),
        )


def run_ray_build(
    settings: Settings,
    store: Store,
    request: BuildRequest,
    plan: RayPlan,
    *,
    embedder: str,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BuildReport:
    """Build (or resume) an atlas on Ray; the report of the local build, for the same atlas, with the
    phases timed: connect, mine, load the actors (the wait for them after mining), run."""
    import ray

    started = time.perf_counter()
    report = BuildReport()

    def phase(name: str, since: float) -> float:
        now = time.perf_counter()
        report.phases[name] = round(now - since, 3)
        return now

    _check_store(store, plan)
    we_started_ray = _connect(plan)
    mark = phase("connect_s", started)
    actors: list[Any] = []
    try:
        count, gpus = _actor_shape(plan)
        cpus = max(1, int(ray.available_resources().get("CPU", 1)))
        spare = int(cpus - count * plan.cpus_per_actor)
        # The actors load their models while mining runs. Mining takes the CPUs the actors leave; where
        # they hold every CPU (for the whole build), mining asks Ray for none, or it would wait for the
        # build's end: it then shares the CPUs with the actors' loading, one task per CPU at most.
        actors = _start_actors(settings, plan, embedder, count, gpus)
        groups = spare if spare >= 1 else cpus
        waiting = _Waiting(progress, should_stop)
        waiting.say(f"mining {len(request.tasks)} tasks in up to {groups} Ray tasks; {count} actors load")
        by_id, fim = _mine_and_save(
            settings, store, request, report, groups=groups, reserve=spare >= 1, wait=waiting.wait
        )
        mark = phase("mine_s", mark)
        waiting.say(f"{report.scenarios} scenarios mined; {count} actors load the model", report.scenarios)
        loaded = [actor.info.remote() for actor in actors]  # every actor loaded: the load is its own phase
        waiting.wait(loaded)
        info: ModelInfo = ray.get(loaded[0])
        mark = phase("load_actors_s", mark)
        if (info.name, info.fim) != (settings.model.name, fim):
            raise InvalidInput(
                f"the actors' model ({info.name}, FIM {info.fim}) is not the one the scenarios were mined "
                f"for ({settings.model.name}, FIM {fim}); every node must hold the same model files."
            )
        todo = scenarios_without_inference(store, info.name, list(by_id))
        report.already_done = report.scenarios - len(todo)
        if progress:
            progress(
                report.already_done,
                report.scenarios,
                f"{len(todo)} scenarios to run on {len(actors)} Ray actors "
                f"({report.already_done} already done)",
            )
        batches = [
            [(i, by_id[i]) for i in todo[start : start + request.batch_size]]
            for start in range(0, len(todo), request.batch_size)
        ]
        _dispatch(actors, batches, plan, report, progress, should_stop)
        mark = phase("run_s", mark)
        if not report.cancelled:
            _check_complete(store, info.name, todo, report)
    except _Stopped:
        report.cancelled = True  # before the first batch: nothing was stored but the mined scenarios
    finally:
        for actor in actors:
            ray.kill(actor)  # frees its GPU now; a cancelled build's batch in flight is simply not stored
        if we_started_ray:
            ray.shutdown()
    report.seconds = time.perf_counter() - started
    return report


class _Stopped(Exception):
    """Cancel was asked while the build waited for mining or for the actors."""


class _Waiting:
    """Waits on Ray while the job row says what is happening (re-reported every few seconds: it is also
    how a cancel asked on the Jobs page reaches a build that is still mining or loading)."""

    def __init__(self, progress: ProgressFn | None, should_stop: Callable[[], bool] | None) -> None:
        self.progress, self.should_stop = progress, should_stop
        self.message, self.total = "", cast(int | None, None)

    def say(self, message: str, total: int | None = None) -> None:
        self.message, self.total = message, total
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(0, self.total, self.message)
        if self.should_stop is not None and self.should_stop():
            raise _Stopped

    def wait(self, refs: list[Any], every_s: float = 5.0) -> None:
        import ray

        pending, last = list(refs), time.monotonic()
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            if pending and time.monotonic() - last >= every_s:
                self._report()
                last = time.monotonic()


def _check_complete(store: Store, model_name: str, todo: list[int], report: BuildReport) -> None:
    """Every scenario the build ran is stored or counted as failed: a lost batch must not pass for done."""
    missing = len(scenarios_without_inference(store, model_name, todo))
    if missing != report.failed:
        raise StoreError(
            f"{missing - report.failed} scenarios have no inference after the Ray build although no actor "
            "reported them failed (see the Ray logs, `ray logs`); run the same command again to finish them."
        )


def _check_store(store: Store, plan: RayPlan) -> None:
    if store.is_sqlite and plan.address is not None:
        raise InvalidInput(
            "a Ray cluster needs a database every machine can reach, and SQLite is a file on one machine: "
            "set ATTNLENS_DB__URL=postgresql+psycopg://user:password@host/db (README, 'Building on a Ray "
            "cluster'), or leave out --address to run Ray on this machine only."
        )


def _connect(plan: RayPlan) -> bool:
    """Join (or start) Ray; True when this call started it, so the build shuts it down again."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine unasked
    try:
        if plan.address is None:
            ray.init(include_dashboard=False, log_to_driver=True)
        else:
            ray.init(address=plan.address, log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ModelUnavailable(
            f"could not reach the Ray cluster at {plan.address!r}: {exc}. Start it (`ray start --head` on "
            "one machine, `ray start --address=HEAD:6379` on the others) or leave out --address."
        ) from exc
    return True


def _actor_shape(plan: RayPlan) -> tuple[int, float]:
    """How many actors, with how many GPUs each, on this cluster."""
    import ray

    cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
    gpus = plan.gpus_per_actor if plan.gpus_per_actor is not None else (1.0 if cluster_gpus else 0.0)
    count = plan.actors if plan.actors is not None else (max(1, int(cluster_gpus // gpus)) if gpus else 1)
    if gpus and count * gpus > cluster_gpus:
        raise InvalidInput(
            f"{count} actors x {gpus:g} GPUs need {count * gpus:g} GPUs; the cluster has {cluster_gpus:g}."
        )
    return count, gpus


def _start_actors(settings: Settings, plan: RayPlan, embedder: str, count: int, gpus: float) -> list[Any]:
    import ray

    remote = ray.remote(BuildActor).options(
        num_cpus=plan.cpus_per_actor,
        num_gpus=gpus,
        max_restarts=ACTOR_RESTARTS,
        max_task_retries=ACTOR_RESTARTS,
    )
    if not gpus:  # "auto" would still take a GPU that a node has but Ray did not give the actor
        merged = settings.model_dump()
        merged["model"]["device"] = merged["apmae"]["device"] = "cpu"
        settings = type(settings).model_validate(merged)
    actors = [remote.remote(settings, embedder, int(plan.cpus_per_actor)) for _ in range(count)]
    log.info("started %d Ray actors (%g CPUs, %g GPUs each)", count, plan.cpus_per_actor, gpus)
    return actors


def _mine_and_save(
    settings: Settings,
    store: Store,
    request: BuildRequest,
    report: BuildReport,
    *,
    groups: int,
    reserve: bool,
    wait: Callable[[list[Any]], None],
) -> tuple[dict[int, Scenario], FimTokens | None]:
    """Mine the tasks in at most `groups` Ray tasks (each reserving a CPU if `reserve`), then store the
    scenarios; returns id -> scenario and the FIM markers used. `wait(refs)` waits for the tasks."""
    import ray

    mine = ray.remote(num_cpus=1 if reserve else 0)(mine_tasks)
    task_lists = task_groups(list(request.tasks), groups)
    refs = [mine.remote(settings, request, group) for group in task_lists]
    wait(refs)
    scenarios: list[Scenario] = []
    runs: list[tuple[list[str], MiningStats]] = []
    fim: FimTokens | None = None
    for group, ref in zip(task_lists, refs, strict=True):
        found, stats, fim = ray.get(ref)
        runs.append((group, stats))
        scenarios += found
    with store.session(immediate=True) as session:
        ids = save_scenarios(session, scenarios, model_name=settings.model.name)
    report.scenarios = len(ids)
    report.mining = MiningStats.of_task_groups(runs).to_dict()
    return dict(zip(ids, scenarios, strict=True)), fim


def _dispatch(
    actors: list[Any],
    batches: Sequence[list[tuple[int, Scenario]]],
    plan: RayPlan,
    report: BuildReport,
    progress: ProgressFn | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    """Keep every actor `batches_in_flight` batches deep until all are done; count what comes back."""
    import ray
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

    queue = deque(batches)
    live = list(actors)
    in_flight: dict[Any, tuple[Any, list[tuple[int, Scenario]]]] = {}  # ref -> (actor, batch)
    done = report.already_done
    while queue or in_flight:
        if should_stop is not None and should_stop():
            report.cancelled = True
            return
        for actor in live:
            while queue and sum(a is actor for a, _ in in_flight.values()) < plan.batches_in_flight:
                batch = queue.popleft()
                in_flight[actor.process.remote(batch)] = (actor, batch)
        if not in_flight:
            raise ModelUnavailable("every Ray actor died; see the Ray logs (`ray logs`) for why.")
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
        for ref in ready:
            actor, batch = in_flight.pop(ref)
            try:
                outcome: BatchOutcome = ray.get(ref)
            except ActorUnavailableError as exc:
                # Restarting (or cut off for a moment): it may come back, but this call is lost.
                log.warning("a Ray actor is unavailable (%s); its batch is queued again", exc)
                queue.appendleft(batch)
                continue
            except (ActorDiedError, RayActorError) as exc:
                # Ray's own restarts and retries are spent: this actor is gone; its batch goes back.
                log.warning("a Ray actor died for good (%s); its batch goes to the others", exc)
                if actor in live:
                    live.remove(actor)
                queue.appendleft(batch)
                continue
            report.processed += outcome.stored
            report.head_patterns += outcome.head_patterns
            for scenario_id, message in outcome.failures:
                report.failed += 1
                if len(report.failures) < 20:
                    report.failures.append(f"scenario {scenario_id}: {message}")
            done += len(batch)
            if progress:
                progress(done, report.scenarios, f"{report.processed} run, {report.failed} failed")
