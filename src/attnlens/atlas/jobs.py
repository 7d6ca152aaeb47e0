"""The job contract between the use cases and whatever runs them: what a handler gets (`JobContext`), how
it stops (`JobCancelled`), and what it needs of the runtime that holds the models (`ModelRuntime`).

The runner that claims and runs jobs (`attnlens.service.jobs`) and the CLI (`run_job_here`) are runtime;
the handlers are use cases, and they live here in `atlas`, so this contract does too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from attnlens.config import Settings
from attnlens.errors import InvalidInput
from attnlens.store import Store
from attnlens.store.jobs import report_progress
from attnlens.store.models import Job

if TYPE_CHECKING:
    from attnlens.apmae import APMAE
    from attnlens.model import TargetModel

P = ParamSpec("P")
T = TypeVar("T")


class JobCancelled(Exception):
    """Raised inside a handler when the job's cancellation was requested."""


def run_here(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """The runner for code that owns its thread (the CLI without a worker, tests): call `fn` right here."""
    return fn(*args, **kwargs)


class ModelRuntime(Protocol):
    """What a job needs of the process holding the models (`service.local.LocalWorker`)."""

    @property
    def model(self) -> TargetModel: ...

    @property
    def apmae(self) -> APMAE: ...

    @property
    def embedder_name(self) -> str: ...

    def run_model(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` where model calls run (a worker's model thread: never beside an ablation's hooks)."""
        ...


@dataclass
class JobContext:
    """What a handler gets: the job, the runtime (models), and a way to report progress."""

    settings: Settings
    store: Store
    job: Job
    worker: str
    runtime: ModelRuntime | None
    cancel_requested: bool = False
    on_progress: Callable[[int, int | None, str | None], None] | None = None

    def progress(self, done: int, total: int | None, message: str | None = None) -> None:
        """Record progress; remember a cancellation request (handlers check `should_stop`)."""
        if report_progress(self.store, self.job.id, self.worker, done=done, total=total, message=message):
            self.cancel_requested = True
        if self.on_progress is not None:
            self.on_progress(done, total, message)

    def should_stop(self) -> bool:
        return self.cancel_requested

    @property
    def models(self) -> ModelRuntime:
        """The runtime holding the models; a job that needs them and has none fails with a clear error."""
        if self.runtime is None:
            raise InvalidInput(f"job {self.job.id} ({self.job.kind}) needs the models; run it in a worker.")
        return self.runtime

    def run_model(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a job's model work where the runtime runs model calls (a LocalWorker's model thread, so it
        never overlaps an interactive ablation)."""
        return self.models.run_model(fn, *args, **kwargs)


JobHandler = Callable[[JobContext], dict[str, Any]]


def require(parameters: dict[str, Any], name: str, kind: type[T]) -> T:
    """A job parameter of the right type, or `InvalidInput` naming it."""
    value = parameters.get(name)
    if not isinstance(value, kind):
        raise InvalidInput(f"job parameter {name!r} must be a {kind.__name__}, got {value!r}.")
    return value
