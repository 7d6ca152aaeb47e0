"""The worker as its own HTTP service (split deployment), beside the API's app and sharing its error
mapping. It exposes exactly the `WorkerClient` methods; `attnlens.service.http.HttpWorker` is its client.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from attnlens.api.auth import require_token
from attnlens.api.body_limit import BodySizeLimit
from attnlens.api.errors import install_error_handlers
from attnlens.contracts.results import AblationOutcome, HolePreview, HoleRequest, PastedHole
from attnlens.heads import HeadRef
from attnlens.service.http import pack_array, unpack_array
from attnlens.service.protocol import WorkerClient


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
    draft_ids: list[int] | None = Field(None, max_length=65_536)


class AnalyzeCall(BaseModel):
    code: str
    hole: HoleRequest | None = None
    tasks: list[str] | None = None
    store: bool = True


def create_worker_app(worker: WorkerClient, *, max_body_bytes: int, token: str | None = None) -> FastAPI:
    """The worker service around a `LocalWorker` (which also runs the job queue); bodies over
    `max_body_bytes` (`api.max_body_bytes`) are refused before they are parsed, and with a `token`
    (`api.token`, shared with the API) every call must carry it."""
    app = FastAPI(title="attnlens worker", openapi_url="/worker/openapi.json", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    if token is not None:
        require_token(app, token)

    @app.get("/worker/status")
    def status() -> dict[str, Any]:
        return worker.status()

    @app.get("/worker/model_shape")
    def model_shape() -> list[int]:
        return list(worker.model_shape())

    @app.post("/worker/head_pattern")
    def head_pattern(call: PatternCall) -> dict[str, Any]:
        return pack_array(worker.head_pattern(call.prompt_ids, HeadRef.parse(call.head)))

    @app.post("/worker/embed_pattern")
    def embed_pattern(call: EmbedCall) -> dict[str, Any]:
        return pack_array(worker.embed_pattern(unpack_array(call.pattern)))

    @app.post("/worker/ablate")
    def ablate(call: AblateCall) -> AblationOutcome:
        heads = [HeadRef.parse(h) for h in call.heads]
        return worker.ablate(
            call.prompt_ids,
            heads,
            max_new_tokens=call.max_new_tokens,
            expected_token_id=call.expected_token_id,
            draft_ids=call.draft_ids,
        )

    @app.post("/worker/preview_holes")
    def preview_holes(call: AnalyzeCall) -> HolePreview:
        return worker.preview_holes(call.code, call.hole, call.tasks)

    @app.post("/worker/analyze")
    def analyze(call: AnalyzeCall) -> list[PastedHole]:
        return worker.analyze(call.code, call.hole, call.tasks, store=call.store)

    return app
