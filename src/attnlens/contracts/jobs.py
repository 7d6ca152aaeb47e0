"""Job kinds and the parameters of the jobs the API may queue, checked without models (a bad request
fails before it is queued; the worker runs the use cases in `attnlens.atlas`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from attnlens.contracts.tasks import check_task
from attnlens.errors import CorpusError, InvalidInput

ATLAS_BUILD = "atlas_build"
ATLAS_CLUSTER = "atlas_cluster"
ATLAS_MAP = "atlas_map"
TRAIN_PREDICTORS = "train_predictors"
ABLATION_EXPERIMENT = "ablation_experiment"
HEAD_SWEEP = "head_sweep"  # ablate each head (and layer) of one inference alone
HEAD_SCORES = "head_scores"  # compute the relational head-type scores of inferences stored without them
PATTERN_FAMILIES = "pattern_families"  # one global clustering of all heads' patterns into families

SelectionRule = Literal["top_positive", "top_negative", "neutral", "random"]
# How a population experiment picks the n heads it ablates (`attnlens.analysis.ablation.select_heads`).
SELECTION_RULES: tuple[SelectionRule, ...] = ("top_positive", "top_negative", "neutral", "random")
RULE_ALIASES = {"pos": "top_positive", "neg": "top_negative"}
# A balanced experiment needs at least this many baseline-correct and as many baseline-incorrect scenarios.
BALANCED_MIN_PER_CLASS = 2
# It mines and measures at most this many times the scenarios asked for: enough for a class as rare as
# about 1 in 16, and a bound on the baseline forwards a corpus without the rarer class costs.
BALANCED_CANDIDATE_FACTOR = 8


def job_model(parameters: Mapping[str, object] | None, default: str) -> str:
    """The model a job is about: its `model` parameter, else `default` (the served model)."""
    return str((parameters or {}).get("model") or default)


def check_corpus(corpus: str) -> str:
    """`corpus` if it names a corpus that exists here.

    A corpus is a folder, a zip/jar, a JSONL file, or `hf:<dataset>`."""
    if not corpus.startswith("hf:") and not Path(corpus).exists():
        raise CorpusError(
            f"corpus {corpus!r} does not exist; give a folder of .java files, a zip/jar or a JSONL file."
        )
    return corpus


# The names the HTTP API always knows, whatever `mining.corpora` holds (config refuses them as keys).
DEMO_CORPUS = "demo"
ATLAS_CORPUS = "atlas"
RESERVED_CORPUS_NAMES = (DEMO_CORPUS, ATLAS_CORPUS)
HF_PREFIX = "hf:"
HF_SETTING = "ATTNLENS_MINING__ALLOW_HF_DATASETS"


def served_corpora(configured: Mapping[str, str], *, demo: str, latest_build: str | None) -> dict[str, str]:
    """Every name the API takes -> its location: the configured corpora, `demo` (the demo atlas's corpus)
    and, once an atlas build ran, `atlas` (the latest build's corpus)."""
    names = dict(configured) | {DEMO_CORPUS: demo}
    if latest_build is not None:
        names[ATLAS_CORPUS] = latest_build
    return dict(sorted(names.items()))


def accepted_corpora(registered: Mapping[str, str], *, allow_hf: bool) -> dict[str, str]:
    """The registered names a request may use: `hf:` ones only where datasets are allowed."""
    return {n: loc for n, loc in registered.items() if allow_hf or not loc.startswith(HF_PREFIX)}


def _refuse_hf() -> CorpusError:
    return CorpusError(
        f"Hugging Face dataset corpora are off on this server (they make it download the dataset); its "
        f"operator can allow them with {HF_SETTING}=true. GET /api/corpora lists the corpora it serves."
    )


def resolve_corpus(
    requested: str, *, registered: Mapping[str, str], root: Path | None, allow_hf: bool
) -> str:
    """The location (to store in job parameters) of the corpus an HTTP request names: a registered name,
    `hf:<dataset>` where allowed, or an existing path under `root` (relative ones taken from it).

    An unknown name, a path outside `root` and a path that does not exist get one and the same message,
    so that a client cannot probe which server paths exist."""
    if requested in registered:
        location = registered[requested]
        if location.startswith(HF_PREFIX):
            if not allow_hf:
                raise _refuse_hf()
            return location
        if not Path(location).exists():
            # The operator's registry is wrong, not the request: say so without the server path.
            raise CorpusError(
                f"corpus {requested!r} is registered but its files are missing on this server; ask its "
                "operator, or pick another from GET /api/corpora."
            )
        return location
    if requested.startswith(HF_PREFIX):
        if not allow_hf:
            raise _refuse_hf()
        if not requested.removeprefix(HF_PREFIX).strip():
            raise CorpusError("name the dataset after hf:, e.g. hf:bigcode/the-stack-smol.")
        return requested
    names = ", ".join(accepted_corpora(registered, allow_hf=allow_hf)) or "none"
    where = (
        f" or a folder of .java files, a .zip/.jar or a .jsonl file under {root}"
        if root is not None
        else "; paths are not accepted over HTTP"
    )
    refused = CorpusError(
        f"unknown corpus: give the name of a registered corpus ({names}){where}. GET /api/corpora lists "
        "the names."
    )
    if root is None or not requested.strip():
        raise refused
    try:
        base = root.resolve()
        # resolve() follows symlinks and `..` first, so a link under the root to a folder outside it is
        # judged by where it leads.
        path = (base / requested).resolve()
        found = path.is_relative_to(base) and path.exists()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a name too long, a symlink loop
        found = False
    if not found:
        raise refused
    return str(path)


def check_head_counts(n: Sequence[int], n_layers: int, n_heads: int, model: str) -> None:
    """Refuse head counts above the model's: a model of `n_layers` x `n_heads` heads cannot have more
    ablated (the API checks at queue time, the job again in case the served model changed)."""
    total = n_layers * n_heads
    too_many = sorted({int(x) for x in n if int(x) > total})
    if too_many:
        raise InvalidInput(
            f"n = {', '.join(map(str, too_many))} is more than the {total} heads of {model} "
            f"({n_layers} layers x {n_heads} heads); ask for at most {total}."
        )


def experiment_parameters(
    task: str,
    rules: Sequence[str],
    n: Sequence[int],
    scenarios: int,
    corpus: str,
    seed: int,
    *,
    balanced: bool = False,
    predictor_kind: str | None = None,
    corpus_check: Callable[[str], str] = check_corpus,
) -> dict[str, object]:
    """Validated job parameters of a population ablation experiment (rule aliases resolved).

    `balanced`: as many baseline-correct as baseline-incorrect held-out scenarios (`scenarios // 2` of
    each). `predictor_kind`: the kind whose SHAP values rank the heads (default: the task's best); stored
    only when given (the registry of kinds is no shared word: the CLI checks the name, the job finds no
    predictor of an unknown kind and says so). `corpus_check` turns `corpus` into the location stored: a
    path that exists (the CLI), or `resolve_corpus` with the server's names (the API); it runs after the
    other checks, so a request wrong in several ways is told the same first thing either way."""
    check_task(task)
    # Checked at run time, not left to annotations: a stored 1 or "yes" would be truthy to one reader and
    # refused by the job that reads it.
    if not isinstance(balanced, bool):
        raise InvalidInput(f"balanced must be true or false, got {balanced!r}.")
    if balanced and scenarios < 2 * BALANCED_MIN_PER_CLASS:
        raise InvalidInput(
            f"a balanced experiment keeps scenarios // 2 of each class and needs at least "
            f"{BALANCED_MIN_PER_CLASS} of each: ask for {2 * BALANCED_MIN_PER_CLASS} scenarios or more."
        )
    if predictor_kind is not None and (not isinstance(predictor_kind, str) or not predictor_kind.strip()):
        raise InvalidInput(f"predictor_kind must name a predictor kind, got {predictor_kind!r}.")
    resolved = [RULE_ALIASES.get(r, r) for r in rules]
    unknown = sorted(set(resolved) - set(SELECTION_RULES))
    if unknown or not resolved:
        raise InvalidInput(f"rules must be some of {', '.join(SELECTION_RULES)}; got {list(rules)}.")
    if not n or min(n) < 0:
        raise InvalidInput("n must list one or more head counts, each 0 or more.")
    location = corpus_check(corpus)
    parameters: dict[str, object] = {
        "task": task,
        "rules": resolved,
        "n": sorted({int(x) for x in n}),
        "scenarios": scenarios,
        "corpus": location,
        "seed": seed,
        "balanced": balanced,
    }
    if predictor_kind is not None:
        parameters["predictor_kind"] = predictor_kind
    return parameters


def sweep_parameters(inference_id: int, model_name: str) -> dict[str, object]:
    """The job's parameters; the model is recorded so that a worker serving another model refuses it."""
    return {"inference_id": int(inference_id), "model": model_name}
