"""Counts of one mining run: what was read, what was skipped and why, and what each task yielded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MiningStats:
    """Filled in by `iter_corpus` (files) and `mine_scenarios` (files mined, candidates, scenarios).

    `skipped` counts whole files by reason (for example `binary`, `not_utf8`, `empty`, `oversized`,
    `duplicate`, `too_short`); `rejected` counts candidate spans that could not become a scenario.
    """

    files_read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    files_mined: int = 0
    files_with_parse_errors: int = 0
    # task -> spans found in the files mined (random: possible start tokens, noise: 1 a file; these two
    # only in files that were tokenized, i.e. that some open task could use)
    candidates: Counter[str] = field(default_factory=Counter)
    scenarios: Counter[str] = field(default_factory=Counter)  # task -> scenarios made
    target_tokens: Counter[str] = field(default_factory=Counter)  # task -> sum of target lengths
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> candidate spans

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def mean_target_tokens(self, task: str) -> float:
        made = self.scenarios[task]
        return self.target_tokens[task] / made if made else 0.0

    @classmethod
    def of_task_groups(cls, runs: Sequence[tuple[Sequence[str], MiningStats]]) -> MiningStats:
        """One run's counts from runs that each mined some of the tasks over the same file order (the Ray
        build mines groups of tasks apart).

        Each task's own counts (candidates, scenarios, target tokens) come from the run that mined it, and
        the rejected spans add up (each run rejects only its own tasks' spans). The file counts are the
        largest any run reached: every run read a prefix of the same files, and a one-process run reads
        until the last task is full, i.e. the longest prefix. One difference remains: a task's candidates
        are counted over the files its group read, fewer than one run reads when other tasks need more."""
        merged = cls()
        for tasks, run in runs:
            merged.files_read = max(merged.files_read, run.files_read)
            merged.files_mined = max(merged.files_mined, run.files_mined)
            merged.files_with_parse_errors = max(merged.files_with_parse_errors, run.files_with_parse_errors)
            merged.skipped |= run.skipped  # Counter union: the larger count per reason
            for task in tasks:
                merged.candidates[task] = run.candidates[task]
                merged.scenarios[task] = run.scenarios[task]
                merged.target_tokens[task] = run.target_tokens[task]
            merged.rejected.update(run.rejected)
        return merged

    def to_dict(self) -> dict[str, Any]:
        return {
            "files_read": self.files_read,
            "skipped": dict(sorted(self.skipped.items())),
            "files_mined": self.files_mined,
            "files_with_parse_errors": self.files_with_parse_errors,
            "candidates": dict(self.candidates),
            "scenarios": dict(self.scenarios),
            "mean_target_tokens": {t: round(self.mean_target_tokens(t), 3) for t in self.scenarios},
            "rejected": dict(sorted(self.rejected.items())),
        }

    def table(self, tasks: tuple[str, ...] | list[str]) -> str:
        """The per-task table the CLI prints, followed by the file counts and skip reasons."""
        lines = [f"{'task':<24}{'candidates':>12}{'scenarios':>11}{'mean target tokens':>20}"]
        for task in tasks:
            lines.append(
                f"{task:<24}{self.candidates[task]:>12}{self.scenarios[task]:>11}"
                f"{self.mean_target_tokens(task):>20.2f}"
            )
        lines.append(f"{'total':<24}{sum(self.candidates.values()):>12}{sum(self.scenarios.values()):>11}")
        lines.append("")
        lines.append(
            f"files read: {self.files_read}   mined: {self.files_mined}   "
            f"with parse errors: {self.files_with_parse_errors}"
        )
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items())) or "none"
        lines.append(f"files skipped: {sum(self.skipped.values())} ({skipped})")
        if self.rejected:
            rejected = ", ".join(f"{reason} {count}" for reason, count in sorted(self.rejected.items()))
            lines.append(f"candidate spans rejected: {rejected}")
        return "\n".join(lines)
