"""The one exception tree of attnlens. Every error a user can cause or meet is one of these.

    AttnLensError                      (500) base; carries `status`, `code` and a message that says what to do
    ├── InvalidInput                   (400) the request or input is wrong; fix it and retry
    │   ├── EmptyInput
    │   ├── InputTooLarge              (413)
    │   ├── BinaryInput
    │   ├── NotJava                    (422) does not parse as Java
    │   ├── InvalidHole                (422) the completion point or span is unusable
    │   ├── HeadOutOfRange             (422) a head name that the model does not have
    │   └── InsufficientData           (422) too few rows, or one class only, for an analysis
    ├── Unauthorized                   (401) a token is required (api.token) and none or another was sent
    ├── NotFound                       (404) an id that does not exist
    ├── Busy                           (503) the worker is saturated; retry after `retry_after` seconds
    ├── ModelError                     (503)
    │   ├── ModelUnavailable           weights cannot be found or loaded (offline, missing package)
    │   │   └── ModelLoading           still loading; Retry-After says when to ask again
    │   ├── AttentionUnavailable       the model returns no attention (not loaded with eager attention)
    │   ├── AttentionInvalid           captured attention fails a validity check
    │   ├── UnsupportedArchitecture    we do not know where this model's attention output projection is
    │   │   └── UnknownFimSpelling     FIM-like tokens that no registered model family spells
    │   └── CheckpointMismatch         an AP-MAE checkpoint does not fit the data
    ├── StoreError                     (500)
    │   ├── IndexMissing           (503) rebuilt from the database at the next start
    │   ├── IndexDamaged           (503) likewise
    │   ├── IndexDimensionMismatch
    │   ├── DatabaseSchemaOutdated
    │   ├── StorageUnavailable     (503) the data dir or database cannot be written (full, read-only, I/O)
    │   └── JobNotHeld             (409) a worker reports on a job it no longer holds (requeued or cancelled)
    ├── CorpusError                    (400) a corpus path that cannot be read
    └── InsecureExposure               (500) refusing to serve beyond loopback without a token (at start-up)

Third-party exceptions are translated at the boundary with `raise ... from exc`.
"""

from __future__ import annotations

from typing import Any


class AttnLensError(Exception):
    """Base of every attnlens error."""

    status: int = 500
    code: str = "internal_error"
    # Seconds after which asking again may succeed, sent as Retry-After; None: asking again will not help.
    retry_after: int | None = None

    def __init__(
        self, message: str, *, details: list[dict[str, Any]] | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        if retry_after is not None:
            self.retry_after = retry_after


class InvalidInput(AttnLensError):
    """The input is wrong; the message says how to fix it."""

    status = 400
    code = "invalid_input"


class EmptyInput(InvalidInput):
    """Nothing (or only white space) was given where content is needed."""

    code = "empty_input"


class InputTooLarge(InvalidInput):
    """The input is over a configured limit."""

    status = 413
    code = "input_too_large"


class BinaryInput(InvalidInput):
    """The input is not text (NUL bytes or not UTF-8)."""

    code = "binary_input"


class NotJava(InvalidInput):
    """The input does not parse as Java."""

    status = 422
    code = "not_java"


class InvalidHole(InvalidInput):
    """The completion point or span cannot be used."""

    status = 422
    code = "invalid_hole"


class HeadOutOfRange(InvalidInput):
    """A head name (`L{layer}H{head}`) that the model does not have, or a malformed one."""

    status = 422
    code = "head_out_of_range"


class Unauthorized(AttnLensError):
    """The server requires a bearer token (`api.token`) and the request carried none, or another one."""

    status = 401
    code = "unauthorized"


class NotFound(AttnLensError):
    """An id that does not exist."""

    status = 404
    code = "not_found"


class Busy(AttnLensError):
    """The worker is saturated; retry later."""

    status = 503
    code = "busy"
    retry_after = 5


class ModelError(AttnLensError):
    """A problem with a model (target LLM or AP-MAE)."""

    status = 503
    code = "model_error"


class ModelUnavailable(ModelError):
    """The weights cannot be found or loaded."""

    code = "model_unavailable"


class ModelLoading(ModelUnavailable):
    """The weights are still loading; retry after `retry_after` seconds (sent as Retry-After)."""

    code = "model_loading"
    retry_after = 5


class AttentionUnavailable(ModelError):
    """The model returned no attention probabilities."""

    code = "attention_unavailable"


class AttentionInvalid(ModelError):
    """Captured attention failed a validity check (row sums, causality, head count)."""

    code = "attention_invalid"


class UnsupportedArchitecture(ModelError):
    """We do not know where this architecture's per-head attention output goes."""

    code = "unsupported_architecture"


class CheckpointMismatch(ModelError):
    """An AP-MAE checkpoint does not fit the patterns it is given."""

    code = "checkpoint_mismatch"


class StoreError(AttnLensError):
    """The database or the index is missing or inconsistent."""

    code = "store_error"


class IndexMissing(StoreError):
    """No FAISS index file where one is expected (the app rebuilds it from the database when it starts)."""

    status = 503
    code = "index_missing"


class IndexDamaged(StoreError):
    """An index file that cannot be read (torn, truncated, not an index); rebuilt from the database at the
    next start, or by `attnlens index rebuild`."""

    status = 503
    code = "index_damaged"


class IndexDimensionMismatch(StoreError):
    """The index's vector size differs from the embeddings offered to it."""

    code = "index_dimension_mismatch"


class StorageUnavailable(StoreError):
    """The data dir or the database cannot be written: the disk is full, it is read-only, or it fails.
    Whatever was being written was rolled back; nothing half-written is left."""

    status = 503
    code = "storage_unavailable"


class DatabaseSchemaOutdated(StoreError):
    """The database schema is older than the code; run the migration the message names."""

    code = "database_schema_outdated"


class CorpusError(AttnLensError):
    """A corpus path that does not exist or has a format we cannot read."""

    status = 400
    code = "corpus_error"


class InsufficientData(InvalidInput):
    """Too few rows, or only one class, for a clustering, predictor or statistic to mean anything."""

    status = 422
    code = "insufficient_data"


class JobNotHeld(StoreError):
    """A worker reported on a job that it no longer holds: it was requeued (stale heartbeat) or finished."""

    status = 409
    code = "job_not_held"


class InUse(AttnLensError):
    """A deletion would remove rows that another stored result still uses (a clustering a predictor was
    trained on, a predictor an experiment ranked heads by): the message names them, to delete first."""

    status = 409
    code = "in_use"


class UnknownFimSpelling(UnsupportedArchitecture):
    """The tokenizer has FIM-looking markers that no registered model family spells; running such a
    model left-to-right would silently waste its FIM training, so we stop and say how to register it."""

    code = "unknown_fim_spelling"


class InsecureExposure(AttnLensError):
    """A server asked to listen beyond loopback with no token: anyone who can reach the port could read the
    atlas and run the model. Raised at start-up, before anything listens."""

    code = "insecure_exposure"
