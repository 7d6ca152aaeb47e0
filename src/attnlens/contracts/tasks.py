"""The completion tasks, each with what it can be used for. This is the one copy: mining, the paste flow,
experiments, the API (`GET /api/tasks`) and, through the API, the pages read it."""

from __future__ import annotations

from dataclasses import dataclass

from attnlens.errors import InvalidInput


@dataclass(frozen=True)
class TaskSpec:
    """One mining task and the flows that accept it."""

    name: str
    description: str
    # The task's targets are tree-sitter nodes, so a hole of this task can be found after a cursor in
    # pasted code, or picked automatically; `random` (arbitrary spans) and `noise` (random tokens) cannot.
    syntactic: bool
    # A control whose ground truth is meaningless by design: its predictor must sit at chance.
    control: bool = False

    @property
    def at_cursor(self) -> bool:
        """Pasted code: the next target of this task at or after a cursor can be the hole."""
        return self.syntactic

    @property
    def auto_holes(self) -> bool:
        """Pasted code: the app can pick a hole of this task by itself."""
        return self.syntactic

    @property
    def mining(self) -> bool:
        """Corpus mining (atlas builds, experiments) produces scenarios of every task."""
        return True


TASK_SPECS: tuple[TaskSpec, ...] = (
    TaskSpec("random", "a random span of 3-10 tokens", syntactic=False),
    TaskSpec("identifiers", "an identifier", syntactic=True),
    TaskSpec("boolean_literals", "true or false", syntactic=True),
    TaskSpec("numeric_literals", "a number literal", syntactic=True),
    TaskSpec("string_literals", "a string or character literal", syntactic=True),
    TaskSpec("boolean_operators", "&&, ||, ==, != or !", syntactic=True),
    TaskSpec("mathematical_operators", "an arithmetic or comparison operator, ++ or --", syntactic=True),
    TaskSpec("assignment_operators", "a compound assignment such as += or <<=", syntactic=True),
    TaskSpec("eol", "the ; that ends a statement", syntactic=True),
    TaskSpec("closing_bracket", "a closing }, ) or ]", syntactic=True),
    TaskSpec(
        "noise",
        "random vocabulary tokens (control: correctness is meaningless)",
        syntactic=False,
        control=True,
    ),
    TaskSpec("function_call", "the name of a called method", syntactic=True),
    TaskSpec("function_name", "the name of a declared method", syntactic=True),
)

TASKS: tuple[str, ...] = tuple(t.name for t in TASK_SPECS)
BY_NAME: dict[str, TaskSpec] = {t.name: t for t in TASK_SPECS}
# Tasks a cursor or the automatic hole picker of the paste flow accepts.
CURSOR_TASKS: tuple[str, ...] = tuple(t.name for t in TASK_SPECS if t.at_cursor)
AUTO_TASKS: tuple[str, ...] = tuple(t.name for t in TASK_SPECS if t.auto_holes)
CONTROL_TASKS: frozenset[str] = frozenset(t.name for t in TASK_SPECS if t.control)
NOISE_TASK = "noise"
# A selection that is exactly no task's target is predicted with the predictor of arbitrary spans.
SELECTION_FALLBACK_TASK = "random"


def parse_tasks(spec: str | None) -> tuple[str, ...]:
    """`"all"`/None -> every task; `"a,b"` -> those tasks in `TASKS` order. Unknown names raise."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return TASKS
    wanted = {name.strip() for name in spec.split(",") if name.strip()}
    unknown = sorted(wanted - set(TASKS))
    if unknown:
        raise InvalidInput(
            f"unknown task(s) {', '.join(unknown)}; choose from: {', '.join(TASKS)} (or 'all')."
        )
    return tuple(task for task in TASKS if task in wanted)


def check_task(task: str) -> str:
    """`task` if it is a known task, else `InvalidInput` listing them."""
    if task not in BY_NAME:
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}; got {task!r}.")
    return task
