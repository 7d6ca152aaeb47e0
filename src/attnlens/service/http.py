"""The worker as its own HTTP service (split deployment), and the client the API uses to reach it.

The service exposes exactly the `WorkerClient` methods; errors travel in the API's JSON error shape and
the client raises the same `AttnLensError` subclass again, so the API cannot tell a remote worker from a
local one. Arrays travel as base64 float32.
"""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, Field

from attnlens import errors
from attnlens.errors import AttnLensError, Busy, ModelUnavailable
from attnlens.heads import HeadRef
from attnlens.service.intervene import AblationOutcome, DiffOp


def _pack(array: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(array, dtype=np.float32)
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _unpack(packed: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(packed["data"]), dtype=np.float32).reshape(packed["shape"])


class PatternCall(BaseModel):
    prompt_ids: list[int] = Field(max_length=65_536)
    head: str


class EmbedCall(BaseModel):
    pattern: dict[str, Any]


class AblateCall(BaseModel):
    prompt_ids: list[int] = Field(max_length=65_536)
    heads: list[str] = Field(max_length=100_000)
    max_new_tokens: int = Field(ge=1)
    expected_token_id: int | None = None


class AnalyzeCall(BaseModel):
    code: str
    hole: dict[str, Any] | None = None
    tasks: list[str] | None = None


def create_worker_app(worker: Any) -> FastAPI:
    """The worker service around a `LocalWorker` (which also runs the job queue)."""
    from attnlens.api.errors import install_error_handlers

    app = FastAPI(title="attnlens worker", openapi_url="/worker/openapi.json", docs_url=None, redoc_url=None)
    install_error_handlers(app)

    @app.get("/worker/status")
    def status() -> dict[str, Any]:
        return worker.status()

    @app.get("/worker/model_shape")
    def model_shape() -> list[int]:
        return list(worker.model_shape())

    @app.post("/worker/head_pattern")
    def head_pattern(call: PatternCall) -> dict[str, Any]:
        return _pack(worker.head_pattern(call.prompt_ids, HeadRef.parse(call.head)))

    @app.post("/worker/embed_pattern")
    def embed_pattern(call: EmbedCall) -> dict[str, Any]:
        return _pack(worker.embed_pattern(_unpack(call.pattern)))

    @app.post("/worker/ablate")
    def ablate(call: AblateCall) -> dict[str, Any]:
        heads = [HeadRef.parse(h) for h in call.heads]
        outcome = worker.ablate(
            call.prompt_ids, heads, max_new_tokens=call.max_new_tokens, expected_token_id=call.expected_token_id
        )
        return asdict(outcome)

    @app.post("/worker/analyze")
    def analyze(call: AnalyzeCall) -> list[dict[str, Any]]:
        results = worker.analyze(call.code, call.hole, call.tasks)
        return [{k: v for k, v in r.items() if k != "embeddings"} for r in results]

    return app


_BY_CODE = {
    cls.code: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, AttnLensError) and cls is not Busy
}


class HttpWorker:
    """`WorkerClient` over HTTP. Pass an `httpx.Client` (tests pass a TestClient of the worker app)."""

    def __init__(self, base_url: str | None = None, *, client: httpx.Client | None = None, timeout_s: float = 300.0) -> None:
        if client is None and base_url is None:
            raise ValueError("HttpWorker needs a base_url or a client")
        self._client = client or httpx.Client(base_url=base_url or "", timeout=timeout_s)

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        try:
            response = self._client.request(method, path, json=payload)
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"the worker service cannot be reached ({exc}); is it running?") from exc
        if response.status_code < 400:
            return response.json()
        try:
            body = response.json()
        except ValueError:
            body = {"code": "", "error": response.text[:300]}
        message = body.get("error") or f"worker answered {response.status_code}"
        if body.get("code") == Busy.code:
            raise Busy(message, retry_after=int(response.headers.get("Retry-After", "5")))
        raise _BY_CODE.get(body.get("code", ""), AttnLensError)(message)

    def status(self) -> dict[str, Any]:
        try:
            return self._call("GET", "/worker/status")
        except ModelUnavailable as exc:
            return {"state": "error", "model_name": None, "model": None, "apmae": None, "error": exc.message}

    def model_shape(self) -> tuple[int, int]:
        layers, heads = self._call("GET", "/worker/model_shape")
        return int(layers), int(heads)

    def head_pattern(self, prompt_ids: list[int], ref: HeadRef) -> np.ndarray:
        return _unpack(self._call("POST", "/worker/head_pattern", {"prompt_ids": list(prompt_ids), "head": ref.name}))

    def embed_pattern(self, pattern: np.ndarray) -> np.ndarray:
        return _unpack(self._call("POST", "/worker/embed_pattern", {"pattern": _pack(pattern)}))

    def ablate(self, prompt_ids: list[int], heads: list[HeadRef], *, max_new_tokens: int, expected_token_id: int | None) -> AblationOutcome:
        data = self._call(
            "POST",
            "/worker/ablate",
            {"prompt_ids": list(prompt_ids), "heads": [h.name for h in heads], "max_new_tokens": max_new_tokens, "expected_token_id": expected_token_id},
        )
        data["diff"] = [DiffOp(**d) for d in data["diff"]]
        return AblationOutcome(**data)

    def analyze(self, code: str, hole: dict[str, Any] | None, tasks: list[str] | None) -> list[dict[str, Any]]:
        return self._call("POST", "/worker/analyze", {"code": code, "hole": hole, "tasks": tasks})
