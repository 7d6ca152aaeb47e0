"""The body of POST /api/jobs, one request model per job kind told apart by `kind`, and what
GET /api/jobs/kinds answers: each kind's fields with their defaults, limits and where their choices come
from, read off these same models, so that the Jobs page's form and the API's validation cannot drift apart.

The options are the CLI's (`attnlens atlas build|cluster|map`, `attnlens predictors train`), with bounds a
remote client needs spelled out; the parameters stored are built by the same functions the CLI calls
(`attnlens.contracts.job_parameters`).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from annotated_types import Ge, Le, MaxLen
from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from attnlens.contracts.job_parameters import DEFAULT_PER_TASK, MAX_BATCH_SIZE, MIN_BATCH_SIZE
from attnlens.contracts.tasks import TASKS

# The most scenarios per task one HTTP request may ask for: 13 tasks x 5,000 is 65,000 inferences, about
# 16 hours on a 2-core CPU (README: 67 a minute). The paper mined 1,000 per task; the CLI is not bounded.
MAX_API_PER_TASK = 5000
MAX_SEED = 2**31 - 1
# Where a field's values come from, in the schema (`x-choices`) and in GET /api/jobs/kinds.
CHOICES_KEY = "x-choices"
CHOICES_FROM = {"tasks": "/api/tasks", "corpora": "/api/corpora"}

TaskName = Annotated[str, Field(min_length=1, max_length=64)]


def _choices(source: Literal["tasks", "corpora", "models"]) -> dict[str, Any]:
    return {CHOICES_KEY: source}


class JobRequestBase(BaseModel):
    """What every job request is: no fields beyond its own (a misspelt option is refused, not ignored)."""

    model_config = ConfigDict(extra="forbid")
    # What the form calls the kind, and the command that queues the same job (shown beside the form).
    title: ClassVar[str]
    command: ClassVar[str]


def _model_field() -> Any:
    return Field(
        None,
        min_length=1,
        max_length=200,
        description="Target model whose atlas rows to analyse [default: the served one]; another model must "
        "have mined inferences in this atlas.",
        json_schema_extra=_choices("models"),
    )


def _tasks_field(description: str) -> Any:
    # Each name is checked against the task registry by the shared parameter builder (400 listing them).
    return Field(
        None,
        min_length=1,
        max_length=len(TASKS),
        description=description,
        json_schema_extra=_choices("tasks"),
    )


class AtlasBuildRequest(JobRequestBase):
    """Mine scenarios from a corpus, run the served model on each, embed every head with AP-MAE and store
    them. A build of the same corpus, tasks and seed resumes: what is stored already is skipped."""

    title: ClassVar[str] = "Build an atlas"
    command: ClassVar[str] = "attnlens atlas build"

    kind: Literal["atlas_build"]
    corpus: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="A corpus name from GET /api/corpora (or a path under the server's corpus root, where "
        "one is configured) [default: `atlas`, the latest build's corpus, else `demo`].",
        json_schema_extra=_choices("corpora"),
    )
    tasks: list[TaskName] | None = _tasks_field(
        "Mining tasks (names from GET /api/tasks) [default: every task]."
    )
    per_task: int = Field(
        DEFAULT_PER_TASK,
        ge=1,
        le=MAX_API_PER_TASK,
        strict=True,
        description="Scenarios mined per task (fewer when the corpus has fewer).",
    )
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, strict=True, description="Mining seed [default: mining.seed]."
    )
    batch_size: int | None = Field(
        None,
        ge=MIN_BATCH_SIZE,
        le=MAX_BATCH_SIZE,
        strict=True,
        description="Scenarios per forward pass [default: atlas.batch_size].",
    )


class AtlasClusterRequest(JobRequestBase):
    """Cluster each head's stored patterns (UMAP + HDBSCAN; settings under ATTNLENS_ANALYSIS__*)."""

    title: ClassVar[str] = "Cluster the heads"
    command: ClassVar[str] = "attnlens atlas cluster"

    kind: Literal["atlas_cluster"]
    model: str | None = _model_field()


class AtlasMapRequest(JobRequestBase):
    """The 2-D map of every stored pattern (UMAP fitted on analysis.map_fit_sample points)."""

    title: ClassVar[str] = "Make the cluster map"
    command: ClassVar[str] = "attnlens atlas map"

    kind: Literal["atlas_map"]
    model: str | None = _model_field()


class TrainPredictorsRequest(JobRequestBase):
    """Cross-validate and train every registered predictor kind per task, on the newest clustering."""

    title: ClassVar[str] = "Train correctness predictors"
    command: ClassVar[str] = "attnlens predictors train"

    kind: Literal["train_predictors"]
    tasks: list[TaskName] | None = _tasks_field(
        "Tasks to train on (names from GET /api/tasks) [default: every task in the atlas, and the noise "
        "control]."
    )
    model: str | None = _model_field()


class HeadScoresRequest(JobRequestBase):
    """Compute the relational head-type scores (duplicate token, induction, brackets, names ...) of the
    served model's inferences stored before they existed: one forward pass each, resumable."""

    title: ClassVar[str] = "Compute head-type scores"
    command: ClassVar[str] = "attnlens heads backfill"

    kind: Literal["head_scores"]
    limit: int | None = Field(
        None, ge=1, le=10_000_000, strict=True, description="At most this many inferences [default: all]."
    )


class PatternFamiliesRequest(JobRequestBase):
    """Find pattern families: one UMAP + HDBSCAN clustering of every head's patterns together (fitted on
    analysis.family_fit_sample patterns, the rest joined by kNN vote), each family labelled by its members'
    head-type scores."""

    title: ClassVar[str] = "Find pattern families"
    command: ClassVar[str] = "attnlens families"

    kind: Literal["pattern_families"]
    model: str | None = _model_field()


JOB_REQUESTS: tuple[type[JobRequestBase], ...] = (
    AtlasBuildRequest,
    AtlasClusterRequest,
    AtlasMapRequest,
    TrainPredictorsRequest,
    HeadScoresRequest,
    PatternFamiliesRequest,
)
JobRequest = Annotated[
    AtlasBuildRequest
    | AtlasClusterRequest
    | AtlasMapRequest
    | TrainPredictorsRequest
    | HeadScoresRequest
    | PatternFamiliesRequest,
    Field(discriminator="kind"),
]


def kind_of(request: type[JobRequestBase]) -> str:
    """The job kind a request model queues (its `kind` literal)."""
    (kind,) = get_args(request.model_fields["kind"].annotation)
    return str(kind)


class JobFieldPublic(BaseModel):
    """One option of a job kind, as the form draws it."""

    name: str
    type: Literal["integer", "string", "list"]
    description: str
    required: bool
    default: int | str | list[str] | None = Field(
        description="What the server uses when the field is left out (settings resolved); null: decided "
        "when the job runs, as `description` says."
    )
    minimum: int | None
    maximum: int | None
    max_length: int | None = Field(description="Most characters (a string) or items (a list).")
    choices: list[str] | None = Field(description="The values accepted, where the server lists them here.")
    choices_from: str | None = Field(description="The endpoint that lists the values accepted.")


class JobKindPublic(BaseModel):
    """A job kind POST /api/jobs queues: what it does, the command that queues the same job, its fields."""

    kind: str
    title: str
    description: str
    command: str
    fields: list[JobFieldPublic]


def _bound(info: FieldInfo, kind: type) -> int | None:
    for item in info.metadata:
        if isinstance(item, kind):
            return int(getattr(item, {Ge: "ge", Le: "le", MaxLen: "max_length"}[kind]))
    return None


def _field_type(info: FieldInfo) -> Literal["integer", "string", "list"]:
    types = {t for t in get_args(info.annotation) or (info.annotation,) if t is not type(None)}
    if int in types:
        return "integer"
    return "string" if str in types else "list"


def form_fields(
    request: type[JobRequestBase], defaults: dict[str, Any], choices: dict[str, list[str]]
) -> list[JobFieldPublic]:
    """Every field of `request` but `kind`, with `defaults` (by name) standing in for its None defaults and
    `choices` (by source: `models`) for the values the server lists itself."""
    out = []
    for name, info in request.model_fields.items():
        if name == "kind":
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        source = str(extra.get(CHOICES_KEY) or "")
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        out.append(
            JobFieldPublic(
                name=name,
                type=_field_type(info),
                description=info.description or "",
                required=info.is_required(),
                default=defaults.get(name) if default is None else default,
                minimum=_bound(info, Ge),
                maximum=_bound(info, Le),
                max_length=_bound(info, MaxLen),
                choices=choices.get(source),
                choices_from=CHOICES_FROM.get(source),
            )
        )
    return out
