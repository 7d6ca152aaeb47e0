"""`LocalWorker`: the worker living inside the serving process (what `attnlens serve` uses)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from attnlens.errors import AttnLensError, ModelUnavailable

if TYPE_CHECKING:
    from attnlens.config import Settings
    from attnlens.model import TargetModel

log = logging.getLogger(__name__)


class LocalWorker:
    """Loads the target model in a background thread, so the server answers at once while it loads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._model: TargetModel | None = None
        self._state = "starting"
        self._error: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, *, background: bool = True) -> None:
        """Begin loading the model (in a thread unless `background` is False)."""
        if background:
            self._thread = threading.Thread(target=self._load, name="attnlens-model-loader", daemon=True)
            self._thread.start()
        else:
            self._load()

    def _load(self) -> None:
        with self._lock:
            self._state = "loading"
        try:
            from attnlens.model import TargetModel

            model = TargetModel.from_settings(self.settings)
        except AttnLensError as exc:
            log.error("model failed to load: %s", exc.message)
            with self._lock:
                self._state, self._error = "error", exc.message
            return
        except Exception as exc:  # a load failure must show in /api/health, not kill the server
            log.exception("model failed to load")
            with self._lock:
                self._state, self._error = "error", f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._model, self._state = model, "ready"

    def wait_ready(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def model(self) -> TargetModel:
        """The loaded model; `ModelUnavailable` (503) while it loads or after it failed."""
        with self._lock:
            if self._model is None:
                detail = f": {self._error}" if self._error else "; retry in a few seconds"
                raise ModelUnavailable(f"the model is {self._state}{detail}")
            return self._model

    def status(self) -> dict[str, Any]:
        with self._lock:
            info = self._model.info.to_dict() if self._model is not None else None
            return {
                "state": self._state,
                "model_name": self.settings.model.name,
                "model": info,
                "error": self._error,
            }
