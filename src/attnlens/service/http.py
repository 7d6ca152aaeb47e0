"""The client the API uses to reach a worker service (split deployment); the service itself is
`attnlens.api.worker_app`.

Errors travel in the API's JSON error shape and the client raises the same `AttnLensError` subclass
again, so the API cannot tell a remote worker from a local one. Results travel as the JSON of the
`attnlens.contracts.results` dataclasses and come back as the same types; arrays as base64 float32.
"""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any, TypeVar

import httpx
import numpy as np
from pydantic import TypeAdapter

from attnlens import errors
from attnlens.contracts.results import AblationOutcome, HolePreview, HoleRequest, PastedHole
from attnlens.errors import AttnLensError, ModelUnavailable, Unauthorized
from attnlens.heads import HeadRef

R = TypeVar("R")


def pack_array(array: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(array, dtype=np.float32)
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def unpack_array(packed: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(packed["data"]), dtype=np.float32).reshape(packed["shape"])


_BY_CODE = {
    cls.code: cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, AttnLensError)
}
_PASTED_HOLES = TypeAdapter(list[PastedHole])
_PREVIEW = TypeAdapter(HolePreview)
_ABLATION = TypeAdapter(AblationOutcome)


class HttpWorker:
    """`WorkerClient` over HTTP. Pass an `httpx.Client` (tests pass a TestClient of the worker app)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 300.0,
        token: str | None = None,
    ) -> None:
        if client is None and base_url is None:
            raise ValueError("HttpWorker needs a base_url or a client")
        self._client = client or httpx.Client(base_url=base_url or "", timeout=timeout_s)
        self._headers = {"Authorization": f"Bearer {token}"} if token is not None else {}

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        try:
            response = self._client.request(method, path, json=payload, headers=self._headers)
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"the worker service cannot be reached ({exc}); is it running?") from exc
        if response.status_code < 400:
            return response.json()
        if response.status_code == Unauthorized.status:
            # The user's request was fine: it is this API's token that the worker refused. Passing the 401 on
            # would send the user to fix a token they did not choose.
            raise ModelUnavailable(
                "the worker service refused this API's token: give the API and the worker the same "
                "ATTNLENS_API__TOKEN."
            )
        try:
            body = response.json()
        except ValueError:
            body = {"code": "", "error": response.text[:300]}
        message = body.get("error") or f"worker answered {response.status_code}"
        wait = response.headers.get("Retry-After", "")  # the worker's wait travels on with the error
        retry_after = int(wait) if wait.isdigit() else None
        raise _BY_CODE.get(body.get("code", ""), AttnLensError)(message, retry_after=retry_after)

    def status(self) -> dict[str, Any]:
        try:
            status: dict[str, Any] = self._call("GET", "/worker/status")
            return status
        except ModelUnavailable as exc:
            return {"state": "error", "model_name": None, "model": None, "apmae": None, "error": exc.message}

    def model_shape(self) -> tuple[int, int]:
        layers, heads = self._call("GET", "/worker/model_shape")
        return int(layers), int(heads)

    def head_pattern(self, prompt_ids: list[int], ref: HeadRef) -> np.ndarray:
        payload = {"prompt_ids": list(prompt_ids), "head": ref.name}
        return unpack_array(self._call("POST", "/worker/head_pattern", payload))

    def embed_pattern(self, pattern: np.ndarray) -> np.ndarray:
        return unpack_array(self._call("POST", "/worker/embed_pattern", {"pattern": pack_array(pattern)}))

    def ablate(
        self,
        prompt_ids: list[int],
        heads: list[HeadRef],
        *,
        max_new_tokens: int,
        expected_token_id: int | None,
        draft_ids: list[int] | None = None,
    ) -> AblationOutcome:
        payload = {
            "prompt_ids": list(prompt_ids),
            "heads": [h.name for h in heads],
            "max_new_tokens": max_new_tokens,
            "expected_token_id": expected_token_id,
            "draft_ids": None if draft_ids is None else list(draft_ids),
        }
        return _ABLATION.validate_python(self._call("POST", "/worker/ablate", payload))

    def analyze(
        self, code: str, hole: HoleRequest | None, tasks: list[str] | None, *, store: bool = True
    ) -> list[PastedHole]:
        payload = {
            "code": code,
            "hole": None if hole is None else asdict(hole),
            "tasks": tasks,
            "store": store,
        }
        return _PASTED_HOLES.validate_python(self._call("POST", "/worker/analyze", payload))

    def preview_holes(self, code: str, hole: HoleRequest | None, tasks: list[str] | None) -> HolePreview:
        payload = {"code": code, "hole": None if hole is None else asdict(hole), "tasks": tasks}
        return _PREVIEW.validate_python(self._call("POST", "/worker/preview_holes", payload))
