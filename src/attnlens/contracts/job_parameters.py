"""The parameters of the atlas jobs (build, cluster, map, train predictors), built and checked in one place:
the CLI (`attnlens atlas build|cluster|map`, `attnlens predictors train`), the demo atlas and the HTTP API
(`POST /api/jobs`) all call these functions, so one request queues the same job whichever way it comes in.

They need no model: a bad request fails before anything is queued. Limits that only a remote client needs
(the most scenarios per task an HTTP request may ask for) live beside the API's request models; the CLI's
user owns the machine and is bounded only by what makes sense at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from attnlens.contracts.jobs import check_corpus
from attnlens.contracts.tasks import TASKS, check_task, parse_tasks
from attnlens.errors import InvalidInput

# Scenarios per forward pass: the bounds of `atlas.batch_size` in config, which the build's default is.
MIN_BATCH_SIZE, MAX_BATCH_SIZE = 1, 256
# Scenarios per task of a build that names no number (`attnlens atlas build`, POST /api/jobs).
DEFAULT_PER_TASK = 50


def task_names(tasks: str | Sequence[str] | None) -> list[str]:
    """The tasks of a build in registry order, each once: a CLI spec (`"all"` or `"a,b"`), or a list of
    names (an HTTP body: each must be a registered task, so `"a,b"` as one list item is refused, not split).
    None or an empty list means every task."""
    if tasks is None or isinstance(tasks, str):
        return list(parse_tasks(tasks))
    wanted = {check_task(name) for name in tasks}
    return [task for task in TASKS if task in wanted] if wanted else list(TASKS)


def _whole(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    # A stored 1.0, True or "5" would be read differently by the job than it was meant: refuse, do not coerce.
    if isinstance(value, int) and not isinstance(value, bool):
        if (low is None or value >= low) and (high is None or value <= high):
            return value
    bounds = f" from {low} to {high}" if high is not None else f" {low} or more" if low is not None else ""
    raise InvalidInput(f"{name} must be a whole number{bounds}, got {value!r}.")


def build_parameters(
    corpus: str,
    tasks: str | Sequence[str] | None,
    per_task: int,
    seed: int,
    batch_size: int,
    *,
    corpus_check: Callable[[str], str] = check_corpus,
) -> dict[str, object]:
    """Job parameters of an atlas build, validated now so that a bad request fails before it is queued.

    `corpus_check` turns `corpus` into the location stored: a path that exists (the CLI, the demo atlas), or
    `resolve_corpus` with the server's registered names (the API). It runs last, as in
    `experiment_parameters`, so a request wrong in several ways hears the same first thing either way."""
    names = task_names(tasks)
    # 0 or more here: the CLI and the API ask for at least 1 themselves; the demo atlas takes its setting
    # (`atlas.demo_per_task`, 0 or more) as it is, and a server must not fail to start over it.
    _whole("per_task", per_task, 0)
    _whole("seed", seed)
    _whole("batch_size", batch_size, MIN_BATCH_SIZE, MAX_BATCH_SIZE)
    return {
        "corpus": corpus_check(corpus),
        "tasks": names,
        "per_task": per_task,
        "seed": seed,
        "batch_size": batch_size,
    }


def analysis_parameters(model: str | None, served: str) -> dict[str, object]:
    """Job parameters of a clustering or a map: the model whose atlas rows to analyse (default: `served`,
    the model of the settings in force), stored by name so that the job and the status pages agree on it."""
    return {"model": model or served}


def predictor_parameters(tasks: Sequence[str] | None, model: str | None) -> dict[str, object]:
    """Job parameters of a predictor training. `tasks` None or empty: every task in the atlas plus the
    `noise` control (decided when the job runs, from what the atlas holds); else the named tasks, each a
    registered one, in the order given, each once. `model` None: the job's worker's served model."""
    names = list(dict.fromkeys(check_task(name) for name in tasks)) if tasks else None
    return {"tasks": names, "model": model}


def head_scores_parameters(served: str, limit: int | None) -> dict[str, object]:
    """Job parameters of a head-scores backfill: the served model (a backfill re-runs the model, so it can
    only score the model the worker holds) and at most `limit` inferences (None: all that lack scores)."""
    if limit is not None:
        _whole("limit", limit, 1)
    return {"model": served, "limit": limit}


ENGINES = ("local", "ray")
# Engines whose builds only the command that queued them runs (it drives the cluster); job runners skip them.
DRIVEN_ENGINES = ("ray",)


def engine_parameters(
    engine: str,
    *,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float | None = None,
) -> dict[str, object]:
    """What an atlas build adds to its parameters to run on Ray (nothing for the local engine, so a local
    build's parameters, and with them its resume, stay as they were)."""
    if engine not in ENGINES:
        raise InvalidInput(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}.")
    if engine == "local":
        if address is not None or actors is not None or gpus_per_actor is not None:
            raise InvalidInput("--address, --actors and --gpus-per-actor need --engine ray.")
        return {}
    if actors is not None:
        _whole("actors", actors, 1)
    if cpus_per_actor <= 0:
        raise InvalidInput(f"cpus_per_actor must be more than 0, got {cpus_per_actor!r}.")
    if gpus_per_actor is not None and gpus_per_actor < 0:
        raise InvalidInput(f"gpus_per_actor must be 0 or more, got {gpus_per_actor!r}.")
    return {
        "engine": "ray",
        "address": address,
        "actors": actors,
        "cpus_per_actor": cpus_per_actor,
        "gpus_per_actor": gpus_per_actor,
    }
