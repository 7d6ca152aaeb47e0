"""Mining completion scenarios from Java corpora with tree-sitter (the paper's 11 tasks plus two).

    files = iter_corpus("src.zip", max_file_bytes=1_000_000, stats=stats, shuffle_seed=0)
    for scenario in mine_scenarios(files, tokenizer=tok, fim=None, tasks=TASKS, per_task=50, stats=stats):
        ...

Task definitions: `docs/tasks.md`.
"""

from attnlens.contracts.tasks import TASKS, parse_tasks
from attnlens.mining.corpus import SourceFile, iter_corpus
from attnlens.mining.correctness import HoleConfidence, first_token_correct, hole_confidence, span_correct
from attnlens.mining.scenarios import Scenario, mine_scenarios
from attnlens.mining.stats import MiningStats
from attnlens.mining.tokens import TokenTable, fim_tokens_of

__all__ = [
    "HoleConfidence",
    "TASKS",
    "MiningStats",
    "Scenario",
    "SourceFile",
    "TokenTable",
    "fim_tokens_of",
    "first_token_correct",
    "hole_confidence",
    "iter_corpus",
    "mine_scenarios",
    "parse_tasks",
    "span_correct",
]
