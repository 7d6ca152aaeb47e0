"""`LocalWorker`: the worker living inside the serving process (what `attnlens serve` uses).

It loads the target model and AP-MAE in a background thread (so the server answers at once), then runs
queued jobs; on an empty atlas it queues the demo build. Heavy imports happen in that thread, so the API
process never imports torch just by constructing a worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from attnlens.contracts.results import HolePreview
from attnlens.errors import AttnLensError, ModelLoading, ModelUnavailable
from attnlens.service.gate import ModelGate
from attnlens.service.model_thread import ModelThread

if TYPE_CHECKING:
    import numpy as np

    from attnlens.apmae import APMAE
    from attnlens.atlas.intervene import AttentionCache, BaselineCache
    from attnlens.config import Settings
    from attnlens.contracts.results import AblationOutcome, HoleRequest, PastedHole
    from attnlens.heads import HeadRef
    from attnlens.mining.tokens import TokenTable
    from attnlens.model import TargetModel
    from attnlens.service.jobs import JobRunner
    from attnlens.store import Store

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def _log_failure(future: Future[None]) -> None:
    """Load failures are caught inside `_load`; anything else (starting the jobs) must not vanish."""
    if not future.cancelled() and future.exception() is not None:
        log.error("the worker failed to start its jobs", exc_info=future.exception())


class LocalWorker:
    """Holds the models and runs jobs, in this process."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store
        self._model: TargetModel | None = None
        self._apmae: APMAE | None = None
        self._state = "starting"
        self._error: str | None = None
        self._apmae_error: str | None = None
        self._lock = threading.Lock()
        self._loading: Future[None] | None = None
        # Every model call (loading, interactive calls, job batches) runs on this one thread: see its module.
        self.model_thread = ModelThread()
        self.runner: JobRunner | None = None
        self.gate = ModelGate(settings.api.max_concurrent_model_calls, settings.api.max_queued_requests)
        # Made on first use (they import torch, which constructing a worker must not).
        self._attention_cache: AttentionCache | None = None
        self._baselines: BaselineCache | None = None
        self._token_table: TokenTable | None = None

    def start(self, *, background: bool = True, run_jobs: bool = False) -> None:
        """Load the models (in a thread unless `background` is False); then, with `run_jobs`, run jobs."""
        self._loading = self.model_thread.submit(self._load, run_jobs=run_jobs)
        self._loading.add_done_callback(_log_failure)
        if not background:
            self._loading.result()

    def _load(self, *, run_jobs: bool) -> None:
        with self._lock:
            self._state = "loading"
        try:
            from attnlens.model import TargetModel

            model = TargetModel.from_settings(self.settings)
        except Exception as exc:  # a load failure must show in /api/health, not kill the server
            message = exc.message if isinstance(exc, AttnLensError) else f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", message)
            with self._lock:
                self._state, self._error = "error", message
            return
        apmae, apmae_error = None, None
        try:
            from attnlens.apmae.load import load_apmae

            apmae = load_apmae(self.settings)
        except Exception as exc:
            apmae_error = exc.message if isinstance(exc, AttnLensError) else f"{type(exc).__name__}: {exc}"
            log.error("AP-MAE failed to load: %s", apmae_error)
        with self._lock:
            self._model, self._apmae, self._apmae_error, self._state = model, apmae, apmae_error, "ready"
        if run_jobs:
            self._start_jobs()

    def _start_jobs(self) -> None:
        from attnlens.atlas.build_job import queue_demo_build
        from attnlens.atlas.handlers import JOB_HANDLERS
        from attnlens.service.jobs import JobRunner

        store = self.open_store()
        queue_demo_build(self.settings, store)
        self.runner = JobRunner(self.settings, store, self, JOB_HANDLERS)
        self.runner.start()

    def open_store(self) -> Store:
        """The worker's store, opened (and migrated) on first use."""
        if self.store is None:
            from attnlens.store import open_store

            self.store = open_store(self.settings)
        return self.store

    def wait_ready(self, timeout: float | None = None) -> None:
        if self._loading is not None:
            wait([self._loading], timeout)

    def run_model(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` (anything that uses the model or AP-MAE) on the model thread; jobs use this too."""
        return self.model_thread.run(fn, *args, **kwargs)

    @property
    def model(self) -> TargetModel:
        """The loaded target model; `ModelUnavailable` (503) while it loads or after it failed."""
        with self._lock:
            if self._model is None:
                if self._error:
                    raise ModelUnavailable(f"the model is {self._state}: {self._error}")
                raise ModelLoading(f"the model is {self._state}; retry in a few seconds")
            return self._model

    @property
    def apmae(self) -> APMAE:
        """The loaded AP-MAE; `ModelUnavailable` while loading or when the checkpoint could not load."""
        with self._lock:
            if self._apmae is None:
                if self._apmae_error:
                    raise ModelUnavailable(f"AP-MAE is not available: {self._apmae_error}")
                raise ModelLoading(
                    f"AP-MAE is not available: the worker is {self._state}; retry in a few seconds"
                )
            return self._apmae

    @property
    def embedder_name(self) -> str:
        """Names the embeddings' origin in stored rows: the checkpoint setting, as a folder name if a path
        (`default` and a hub id stay as they are)."""
        from attnlens.apmae.load import embedder_label

        return embedder_label(self.settings.apmae.checkpoint)

    # -- interactive model calls (each through the gate) ---------------------------------------------

    def head_pattern(self, prompt_ids: list[int], ref: HeadRef) -> np.ndarray:
        """The (q, k) float32 attention of one head on a prompt."""
        from attnlens.atlas import intervene

        with self.gate.slot():
            if self._attention_cache is None:
                self._attention_cache = intervene.AttentionCache()
            return self.run_model(intervene.head_pattern, self.model, self._attention_cache, prompt_ids, ref)

    def embed_pattern(self, pattern: np.ndarray) -> np.ndarray:
        """AP-MAE embedding (dim,) of one raw (n, n) attention pattern."""
        from attnlens.atlas import intervene

        with self.gate.slot():
            return self.run_model(intervene.embed_pattern, self.apmae, pattern)

    def ablate(
        self,
        prompt_ids: list[int],
        heads: list[HeadRef],
        *,
        max_new_tokens: int,
        expected_token_id: int | None,
        draft_ids: list[int] | None = None,
    ) -> AblationOutcome:
        """Generate with and without `heads` ablated and compare."""
        from attnlens.atlas import intervene

        with self.gate.slot():
            if self._baselines is None:
                self._baselines = intervene.BaselineCache()
            return self.run_model(
                intervene.ablate, self.model, prompt_ids, heads, max_new_tokens=max_new_tokens,
                expected_token_id=expected_token_id, baselines=self._baselines, draft_ids=draft_ids,
            )  # fmt: skip

    def token_table(self) -> TokenTable:
        """The mining token table of the loaded model's tokenizer (built once)."""
        if self._token_table is None:
            from attnlens.mining.tokens import TokenTable

            self._token_table = TokenTable(self.model.tokenizer)
        return self._token_table

    def preview_holes(self, code: str, hole: HoleRequest | None, tasks: list[str] | None) -> HolePreview:
        """The holes `analyze` would make (no model run, no gate): widened with the model's token table once
        the model has loaded; before, the span tree-sitter picks, and a note that the run may widen it."""
        from attnlens.atlas.paste_holes import preview_holes

        try:
            tokens = (self.token_table(), self.model.info.fim is None)
            note = None
        except ModelUnavailable as exc:
            tokens = None
            note = (
                f"the model's tokenizer is not at hand yet ({exc.message}): each hole is the selection or "
                "the task's target, and the run may widen it to whole tokens."
            )
        holes = preview_holes(code, hole, tasks, max_bytes=self.settings.api.max_code_bytes, tokens=tokens)
        return HolePreview(holes=holes, aligned=tokens is not None, note=note)

    def analyze(
        self, code: str, hole: HoleRequest | None, tasks: list[str] | None, *, store: bool = True
    ) -> list[PastedHole]:
        """Run pasted code through the atlas pipeline (`attnlens.atlas.paste`); each hole is stored as a
        pasted inference, or, with `store=False`, nothing is written and each result carries its grid. Its
        model work waits at the gate like every interactive call."""
        from attnlens.atlas.paste import analyze_code

        return analyze_code(
            self.settings, self.open_store(), _Gated(self), self.token_table(), code, hole, tasks,
            persist=store,
        )  # fmt: skip

    def model_shape(self) -> tuple[int, int]:
        """(layers, query heads per layer) of the loaded model."""
        info = self.model.info
        return info.n_layers, info.n_heads

    def status(self) -> dict[str, Any]:
        with self._lock:
            apmae = None
            if self._apmae is not None:
                config = self._apmae.config
                apmae = {
                    "checkpoint": self.embedder_name,
                    "embedding_dim": config.encoder_dim,
                    "input_size": config.max_length,
                    "patch_size": config.patch_size,
                    "decoder_mode": config.decoder_mode,
                }
            served = self._model.info.name if self._model is not None else self.settings.model.name
            status = {
                "state": self._state,
                "model_name": self.settings.model.name,
                "model": self._model.info.to_dict() if self._model is not None else None,
                "apmae": apmae,
                "apmae_error": self._apmae_error,
                "error": self._error,
            }
        if apmae is not None:
            # Which model's patterns the checkpoint learnt from (its training.json, written by
            # `attnlens train-apmae`; None when it has none and is not a released one). Read here, after
            # the checkpoint loaded (so torch is loaded too); the file is small.
            import json

            from attnlens.apmae.load import RELEASED_CHECKPOINTS, checkpoint_folder, is_hub_id
            from attnlens.contracts.models import PRESETS

            checkpoint = self.settings.apmae.checkpoint
            # a released checkpoint has no training.json, but which StarCoder2 it learnt from is known
            trained_on = RELEASED_CHECKPOINTS.get(checkpoint)
            if trained_on is None and not is_hub_id(checkpoint):
                try:
                    info = json.loads((checkpoint_folder(checkpoint) / "training.json").read_text())
                    trained_on = info["cache_spec"]["model"]
                except (OSError, ValueError, KeyError, TypeError):
                    trained_on = None

            def names(model: str) -> set[str]:  # a preset and its hub id name one model
                preset = PRESETS.get(model)
                same = {p.name for p in PRESETS.values() if p.hub_id == model}
                return {model, *same, *([preset.hub_id] if preset and preset.hub_id else [])}

            apmae["trained_on"] = trained_on
            apmae["warning"] = (
                f"the AP-MAE checkpoint {self.embedder_name} was trained on {trained_on}'s attention "
                f"patterns, but the served model is {served}: its embeddings of {served}'s patterns (search, "
                f"clusters, predictions) are outside what it learnt. Train one on {served} with `attnlens "
                f"train-apmae --model {served}` and point ATTNLENS_APMAE__CHECKPOINT at it."
                if trained_on is not None and not names(str(trained_on)) & names(served)
                else None
            )
        return status


class _Gated:
    """The worker as a job-style runtime whose model calls wait at the request gate: an interactive use
    case (pasting code) runs its model work like any other interactive call."""

    def __init__(self, worker: LocalWorker) -> None:
        self._worker = worker

    @property
    def model(self) -> TargetModel:
        return self._worker.model

    @property
    def apmae(self) -> APMAE:
        return self._worker.apmae

    @property
    def embedder_name(self) -> str:
        return self._worker.embedder_name

    def run_model(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._worker.gate.slot():
            return self._worker.run_model(fn, *args, **kwargs)
