"""Balanced held-out sets for population ablation experiments, and `attnlens experiments run|list`.

The tiny StarCoder2's random weights never get a first token right, so the balanced runs use it through an
oracle that answers right on chosen prompts: mining, the rounds, the job and the statistics are real.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from attnlens.api.schemas import ExperimentRequest
from attnlens.atlas.experiments import run_ablation_experiment
from attnlens.atlas.held_out import HELD_OUT_SEED_OFFSET, HeldOutSet, held_out_set, iter_held_out
from attnlens.atlas.jobs import JobContext, run_here
from attnlens.cli import app
from attnlens.config import Settings
from attnlens.contracts.jobs import ABLATION_EXPERIMENT, experiment_parameters
from attnlens.errors import InsufficientData, InvalidInput
from attnlens.heads import HeadRef
from attnlens.service.jobs import run_job_here
from attnlens.store import Store, open_store
from attnlens.store.jobs import enqueue_job, get_job
from attnlens.store.models import Job

CONTEXT = 48  # short prompts: every generated file qualifies and the tiny model runs fast
TASK = "identifiers"


def write_corpus(folder: Path, files: int = 40) -> Path:
    """`files` small Java classes; each gives one identifiers scenario."""
    folder.mkdir(parents=True)
    for i in range(files):
        (folder / f"Shape{i}.java").write_text(
            f"""package demo;

public class Shape{i} {{
    private int width{i} = {i + 3};
    private int height{i} = {2 * i + 1};

    public int area{i}() {{
        int result = width{i} * height{i};
        return result + {i};
    }}

    public boolean wider{i}(Shape{i} other) {{
        return width{i} > other.width{i} && height{i} >= other.height{i};
    }}
}}
"""
        )
    return folder


class Oracle:
    """The tiny model, except that its greedy first token is the target's on the prompts in `right`."""

    def __init__(self, model: Any, right: dict[tuple[int, ...], int]) -> None:
        self._model, self._right = model, right

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def next_token_logits_batch(self, sequences: Sequence[Sequence[int]], *, ablate: Iterable[HeadRef] = ()):
        logits = self._model.next_token_logits_batch(sequences, ablate=ablate).clone()
        for row, prompt in zip(logits, sequences, strict=True):
            target = self._right.get(tuple(prompt))
            if target is not None:
                row[target] = row.max() + 1
        return logits


class Runtime:
    """A job runtime holding only the (oracle) model: the `random` rule needs no AP-MAE."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.embedder_name = "none"

    @property
    def apmae(self) -> Any:
        raise AssertionError("a random-rule experiment must not need AP-MAE")

    def run_model(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return run_here(fn, *args, **kwargs)


@pytest.fixture
def setup(tmp_path: Path, tiny_model) -> tuple[Settings, Store, Path, list]:
    """Settings and an empty store on a temporary data dir, the generated corpus, and its held-out
    identifiers scenarios in mining order (what the job will see, for seed 0)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        model={"name": "tiny-starcoder2", "device": "cpu"},
        mining={"context_tokens": CONTEXT},
    )
    store = open_store(settings)
    corpus = write_corpus(tmp_path / "corpus")
    mined = list(iter_held_out(settings, store, tiny_model, TASK, 1000, str(corpus), HELD_OUT_SEED_OFFSET))
    assert len(mined) == 40
    return settings, store, corpus, mined


def oracle(tiny_model, mined: list, right: Iterable[int]) -> Oracle:
    return Oracle(tiny_model, {tuple(mined[i].prompt_ids): mined[i].target_ids[0] for i in right})


def choose(settings: Settings, store: Store, model: Any, corpus: Path, count: int) -> HeldOutSet:
    context = JobContext(settings, store, Job(id=0, kind=ABLATION_EXPERIMENT), "test", Runtime(model))
    return held_out_set(
        context, model, TASK, count, str(corpus), HELD_OUT_SEED_OFFSET, balanced=True, report=lambda _: None
    )


def test_a_balanced_random_experiment_holds_as_many_right_as_wrong(setup, tiny_model):
    settings, store, corpus, mined = setup
    # The first round (the 4 asked) has none right; the second (the next 8) has two.
    model = oracle(tiny_model, mined, right=[5, 9, 20])
    parameters = experiment_parameters(TASK, ["random"], [1, 2], 4, str(corpus), 0, balanced=True)
    job_id = enqueue_job(store, ABLATION_EXPERIMENT, parameters)
    job = run_job_here(settings, store, job_id, Runtime(model), run_ablation_experiment)
    assert job.state == "succeeded", job.error
    result = job.result
    assert result["balanced"] is True and result["scenarios"] == 4 and result["scenarios_asked"] == 4
    assert result["n_correct_baseline"] == result["n_incorrect_baseline"] == 2
    assert result["baseline_accuracy"] == 0.5
    assert result["candidates_measured"] == 12 and result["balance_shortfall"] is None
    assert [(r["rule"], r["n"], r["n_heads"]) for r in result["rows"]] == [("random", 1, 1), ("random", 2, 2)]
    for row in result["rows"]:  # the oracle's right answers survive any ablation
        assert row["c2i"] == 0 and row["accuracy"] == 0.5 + row["i2c"] / 4 == 0.5 + row["change"]
    assert get_job(store, job_id).parameters["balanced"] is True


def test_the_first_of_each_class_are_kept_in_mining_order(setup, tiny_model):
    settings, store, corpus, mined = setup
    model = oracle(tiny_model, mined, right=[5, 9, 20])
    held = choose(settings, store, model, corpus, 4)
    assert held.scenarios == [mined[i] for i in (0, 1, 5, 9)]
    assert held.baseline.tolist() == [False, False, True, True]
    assert held.candidates == 12  # 4, then 8 more; the 16 after them were never measured
    assert choose(settings, store, model, corpus, 4).scenarios == held.scenarios  # reproducible


def test_a_rare_class_is_matched_and_the_shortfall_recorded(setup, tiny_model):
    settings, store, corpus, mined = setup
    held = choose(settings, store, oracle(tiny_model, mined, right=[3, 17, 30]), corpus, 10)
    summary = held.summary()
    assert summary["n_correct_baseline"] == summary["n_incorrect_baseline"] == 3
    assert held.scenarios == [mined[i] for i in (0, 1, 2, 3, 17, 30)]
    assert summary["candidates_measured"] == 40  # rounds of 10, 20 and the last 10, below the cap of 80
    assert "asked for 5 of each class" in summary["balance_shortfall"]
    assert "3 correct and 37 incorrect, so 3 of each were kept" in summary["balance_shortfall"]


def test_too_few_of_a_class_fails_with_what_to_do(setup, tiny_model):
    settings, store, corpus, mined = setup
    with pytest.raises(InsufficientData) as refused:
        choose(settings, store, oracle(tiny_model, mined, right=[7]), corpus, 4)
    message = refused.value.message
    assert "at least 2 baseline-correct and 2 baseline-incorrect" in message
    assert "1 correct and 31 incorrect" in message and "the cap" in message  # 8 x 4 measured
    assert "larger corpus" in message and "unbalanced" in message


def test_balanced_must_be_a_bool():
    def parameters(**extra: Any) -> dict[str, object]:
        return experiment_parameters(TASK, ["random"], [1], 10, str(Path(__file__).parent), 0, **extra)

    assert parameters()["balanced"] is False  # the old behaviour, now stated in the stored parameters
    assert parameters(balanced=True)["balanced"] is True
    for wrong in ("yes", 1, None, "true"):
        with pytest.raises(InvalidInput, match="balanced must be true or false"):
            parameters(balanced=wrong)
    with pytest.raises(InvalidInput, match="at least 2 of each"):
        experiment_parameters(TASK, ["random"], [1], 3, str(Path(__file__).parent), 0, balanced=True)
    assert ExperimentRequest(task=TASK, balanced=True).balanced is True
    assert ExperimentRequest(task=TASK).balanced is False
    with pytest.raises(ValidationError):
        ExperimentRequest.model_validate({"task": TASK, "balanced": "yes"})


def _cli(tmp_path: Path, *args: str):
    env = {
        "ATTNLENS_MODEL__DEVICE": "cpu",
        "ATTNLENS_APMAE__DEVICE": "cpu",
        "ATTNLENS_MINING__CONTEXT_TOKENS": str(CONTEXT),
    }
    return CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), *args], env=env)


def test_cli_runs_an_experiment_writes_its_json_and_lists_it(tmp_path, tiny_apmae_folder):
    corpus, out = write_corpus(tmp_path / "corpus", files=6), tmp_path / "out" / "result.json"
    done = _cli(
        tmp_path, "experiments", "run", "--task", TASK, "--rules", "random",
        "--n", "2,1", "--scenarios", "3", "--corpus", str(corpus), "--model", "tiny-starcoder2",
        "--checkpoint", str(tiny_apmae_folder), "--seed", "3", "--out", str(out),
    )  # fmt: skip
    assert done.exit_code == 0, (done.output, done.exception)
    result = json.loads(out.read_text())
    assert result["state"] == "succeeded" and result["task"] == TASK and result["balanced"] is False
    assert result["scenarios"] == result["n_correct_baseline"] + result["n_incorrect_baseline"] == 3
    assert result["baseline_accuracy"] == result["n_correct_baseline"] / 3
    assert [(r["rule"], r["n"], len(r["heads"])) for r in result["rows"]] == [
        ("random", 1, 1),
        ("random", 2, 2),
    ]
    assert "accuracy [95% CI]" in done.output and "c->i [95% CI]" in done.output
    assert (
        "baseline: first-token accuracy" in done.output and f"job {result['job']}: succeeded" in done.output
    )

    listed = _cli(tmp_path, "experiments", "list")
    assert listed.exit_code == 0, listed.output
    row = next(
        line.split() for line in listed.output.splitlines() if line.split()[:1] == [str(result["job"])]
    )
    assert row[1:3] == [TASK, "succeeded"] and row[-3:] == ["3", "no", f"{result['baseline_accuracy']:.3f}"]


def test_cli_balanced_run_without_a_right_answer_fails_plainly(tmp_path, tiny_apmae_folder):
    corpus = write_corpus(tmp_path / "corpus", files=6)
    done = _cli(
        tmp_path, "experiments", "run", "--task", TASK, "--rules", "random", "--n", "1",
        "--scenarios", "4", "--balanced", "--corpus", str(corpus), "--model", "tiny-starcoder2",
        "--checkpoint", str(tiny_apmae_folder),
    )  # fmt: skip
    assert isinstance(done.exception, InsufficientData), done.output
    assert "a balanced experiment needs at least 2 baseline-correct" in done.exception.message
    listed = _cli(tmp_path, "experiments", "list")
    assert " failed " in listed.output
