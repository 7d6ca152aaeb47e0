"""Mining completion scenarios from Java corpora with tree-sitter (the paper's 11 tasks plus two).

    files = iter_corpus("src.zip", max_file_bytes=1_000_000, stats=stats, shuffle_seed=0)
    for scenario in mine_scenarios(files, tokenizer=tok, fim=None, tasks=TASKS, per_task=50, stats=stats):
        ...

Task definitions: `docs/tasks.md`.
"""

import importlib
from typing import Any

# Exported names resolve on first use (PEP 562): `correctness` needs torch, and processes that only want
# the task list or the corpus readers (the API checking a request) must not import it.
_EXPORTS = {
    "SourceFile": "corpus",
    "iter_corpus": "corpus",
    "first_token_correct": "correctness",
    "span_correct": "correctness",
    "Scenario": "scenarios",
    "mine_scenarios": "scenarios",
    "MiningStats": "stats",
    "TASKS": "tasks",
    "parse_tasks": "tasks",
    "TokenTable": "tokens",
    "fim_tokens_of": "tokens",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'attnlens.mining' has no attribute {name!r}")
    return getattr(importlib.import_module(f"attnlens.mining.{_EXPORTS[name]}"), name)
