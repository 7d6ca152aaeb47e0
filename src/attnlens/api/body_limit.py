"""Refuse request bodies over `api.max_body_bytes` with 413 in the one error shape, before they are parsed.

A declared `Content-Length` over the limit is answered at once, without reading a byte or calling the app.
A body without one (chunked) is counted as it streams in, and reading stops at the first chunk over the
limit: the error surfaces where the route reads its body, and the API's error handlers shape it.
(Starlette's own `RequestBodyLimitMiddleware` answers in plain text, outside the error shape.)
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attnlens.api.errors import error_body

CODE = "input_too_large"


def _message(limit: int) -> str:
    return (
        f"the request body is over the limit of {limit:,} bytes (setting ATTNLENS_API__MAX_BODY_BYTES); "
        "send less, for example a shorter file or a smaller matrix."
    )


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_message(limit))


class BodySizeLimit:
    """Pure ASGI middleware (it wraps `receive`, so streaming still works under the limit)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(error_body(413, CODE, _message(self.max_bytes))).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        # The client may still be sending: closing the connection saves reading what we refuse.
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
