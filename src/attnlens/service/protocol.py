"""The interface between the API (which never imports torch) and the worker (which owns the models).

Under `attnlens serve` the worker runs in the same process (`LocalWorker`); in the split deployment an
HTTP client with the same methods stands in its place (`HttpWorker`). Results are the frozen types of
`attnlens.contracts.results`; arrays cross it as numpy arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np

    from attnlens.contracts.results import AblationOutcome, HolePreview, HoleRequest, PastedHole
    from attnlens.heads import HeadRef

WorkerState = Literal["starting", "loading", "ready", "error"]


class WorkerClient(Protocol):
    """What the API may ask of the worker. Model calls raise `Busy` when the worker is saturated and
    `ModelUnavailable` while the models load."""

    def status(self) -> dict[str, Any]:
        """`{"state": WorkerState, "model": ModelInfo dict or None, "apmae": ..., "error": str or None}`."""
        ...

    def model_shape(self) -> tuple[int, int]:
        """(layers, query heads per layer) of the loaded model."""
        ...

    def head_pattern(self, prompt_ids: list[int], ref: HeadRef) -> np.ndarray:
        """The full (q, k) attention of one head on a prompt, recomputed (and cached) by the worker."""
        ...

    def embed_pattern(self, pattern: np.ndarray) -> np.ndarray:
        """AP-MAE embedding (dim,) of one raw (n, n) attention pattern."""
        ...

    def ablate(
        self,
        prompt_ids: list[int],
        heads: list[HeadRef],
        *,
        max_new_tokens: int,
        expected_token_id: int | None,
        draft_ids: list[int] | None = None,
    ) -> AblationOutcome:
        """Baseline vs ablated completion, diff, KL and expected-token probability. `draft_ids`, the
        completion stored for the prompt, only makes decoding faster (`TargetModel.generate`)."""
        ...

    def analyze(
        self, code: str, hole: HoleRequest | None, tasks: list[str] | None, *, store: bool = True
    ) -> list[PastedHole]:
        """Pasted Java: one analysed hole per requested hole, stored as pasted inferences; with
        `store=False` nothing is written and each hole carries its grid instead of an inference id."""
        ...

    def preview_holes(self, code: str, hole: HoleRequest | None, tasks: list[str] | None) -> HolePreview:
        """The holes `analyze` would complete for the same request, without running the model (widened to
        the model's tokens once it has loaded), or the error `analyze` would raise before running it."""
        ...
