"""The interface between the API (which never imports torch) and the worker (which owns the models).

Under `attnlens serve` the worker runs in the same process (`LocalWorker`); in the split deployment an
HTTP client with the same methods stands in its place.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

WorkerState = Literal["starting", "loading", "ready", "error"]


class WorkerClient(Protocol):
    """What the API may ask of the worker."""

    def status(self) -> dict[str, Any]:
        """`{"state": WorkerState, "model": ModelInfo dict or None, "error": str or None}`."""
        ...
