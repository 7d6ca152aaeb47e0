"""What an ablation experiment request may contain, checked without models (the API validates with this
before queueing; the worker runs `attnlens.atlas.experiments`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnlens.errors import CorpusError, InvalidInput

ABLATION_EXPERIMENT = "ablation_experiment"
# The selection rules of attnlens.analysis.ablation.SELECTION_RULES (checked equal by a test).
RULES = ("top_positive", "top_negative", "neutral", "random")


def experiment_parameters(
    task: str, rules: Sequence[str], n: Sequence[int], scenarios: int, corpus: str, seed: int
) -> dict[str, Any]:
    """Validated job parameters (so a bad request fails before it is queued)."""
    from attnlens.mining.tasks import TASKS

    if task not in TASKS:
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}; got {task!r}.")
    unknown = sorted(set(rules) - set(RULES))
    if unknown or not rules:
        raise InvalidInput(f"rules must be some of {', '.join(RULES)}; got {list(rules)}.")
    if not n or min(n) < 0:
        raise InvalidInput("n must list one or more head counts, each 0 or more.")
    if not corpus.startswith("hf:") and not Path(corpus).exists():
        raise CorpusError(f"corpus {corpus!r} does not exist.")
    return {"task": task, "rules": list(rules), "n": sorted({int(x) for x in n}), "scenarios": scenarios, "corpus": corpus, "seed": seed}
