"""Every error leaves the API (and the worker service) in one JSON shape, pinned by
tests/api/test_health.py (`test_unknown_route_uses_the_error_shape`) and tests/api/test_schema_fuzz.py:

{"ok": false, "status": 404, "code": "not_found", "error": "what went wrong and what to do",
 "errors": [{"loc": [...], "msg": "...", "type": "..."}]}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from attnlens.errors import AttnLensError

log = logging.getLogger(__name__)


def error_body(
    status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"ok": False, "status": status, "code": code, "error": message, "errors": errors or []}


def _json_safe(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        out.append(
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AttnLensError)
    async def _domain(_request: Request, exc: AttnLensError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse(
            error_body(exc.status, exc.code, exc.message, exc.details), exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _json_safe(list(exc.errors()))
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
        message = f"invalid request: {where + ': ' if where else ''}{first['msg']}"
        return JSONResponse(error_body(422, "invalid_request", message, errors), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "invalid_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "input_too_large",
        }.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if message == "There was an error parsing the body":
            message = "the request body could not be read; send a JSON object encoded as UTF-8."
        return JSONResponse(error_body(exc.status_code, code, message), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            error_body(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log."),
            500,
        )
