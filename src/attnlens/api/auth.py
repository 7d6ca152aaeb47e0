"""Who may call the servers: a bearer token, required before anything listens beyond loopback.

On 127.0.0.1 (the default) the app is reachable from this machine only, and needs no token. Anywhere else,
`check_exposure` refuses to start without `api.token` (or the loudly logged `api.insecure_no_token`), and
`BearerAuth` answers every `/api` and `/worker` request that lacks the token with 401 in the one error shape.
The pages themselves (HTML, JS, CSS) hold no data and load without it; they ask for the token when the API
answers 401. The OpenAPI schema and the docs page stay open (they describe the public code, not the atlas),
and declare the scheme so that the docs page's "Authorize" button works.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from attnlens.api.errors import error_body
from attnlens.config import APISettings
from attnlens.errors import InsecureExposure, Unauthorized

log = logging.getLogger(__name__)

PROTECTED_PREFIXES = ("/api/", "/worker/")
OPEN_PATHS = frozenset({"/api/docs", "/api/openapi.json", "/worker/openapi.json"})
SCHEME = "bearer"


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine. A host name other than `localhost` counts as
    exposed: it may resolve to any interface."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_exposure(api: APISettings, host: str, *, service: str = "attnlens") -> None:
    """Refuse to listen on `host` beyond loopback without a token (raises `InsecureExposure`), unless the
    user said `api.insecure_no_token`, which is logged as a warning."""
    if is_loopback(host) or api.token is not None:
        return
    if api.insecure_no_token:
        log.warning(
            "%s is listening on %s WITHOUT A TOKEN (api.insecure_no_token): anyone who can reach this port "
            "can read the atlas and run the model. Set ATTNLENS_API__TOKEN instead.",
            service,
            host,
        )
        return
    raise InsecureExposure(
        f"{service} will not listen on {host} without a token: anyone who could reach the port could read "
        "the atlas and run the model. Set ATTNLENS_API__TOKEN to a secret of at least 16 characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(32))') and send it as `Authorization: "
        "Bearer <token>`; or bind 127.0.0.1; or, on a closed network only, pass --insecure-no-token."
    )


def token_matches(header: str | None, token: str) -> bool:
    """`header` is `Bearer <token>` (scheme case-insensitive), compared in constant time."""
    if not header:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != SCHEME:
        return False
    return hmac.compare_digest(presented.strip().encode("utf-8"), token.encode("utf-8"))


class BearerAuth:
    """Pure ASGI middleware: `/api` and `/worker` requests without the token get 401 before any route runs."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        presented = Headers(scope=scope).get("authorization") if scope["type"] == "http" else None
        if (
            scope["type"] != "http"
            or path in OPEN_PATHS
            or not path.startswith(PROTECTED_PREFIXES)
            or token_matches(presented, self.token)
        ):
            await self.app(scope, receive, send)
            return
        sent = presented is not None
        error = Unauthorized(
            "this server needs a token: send `Authorization: Bearer <token>` (the value of "
            "ATTNLENS_API__TOKEN on the server)."
            if not sent
            else "the token sent is not this server's token (ATTNLENS_API__TOKEN); check it and try again."
        )
        body = json.dumps(error_body(error.status, error.code, error.message)).encode()
        challenge = 'Bearer realm="attnlens"' + (', error="invalid_token"' if sent else "")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", challenge.encode()),
        ]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def require_token(app: FastAPI, token: str) -> None:
    """Guard `app` with `token` and declare the scheme in its OpenAPI schema."""
    app.add_middleware(BearerAuth, token=token)
    plain_schema = app.openapi

    def openapi_with_scheme() -> dict[str, Any]:
        schema = plain_schema()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The server's ATTNLENS_API__TOKEN.",
        }
        schema["security"] = [{SCHEME: []}]
        return schema

    app.openapi = openapi_with_scheme  # type: ignore[method-assign]
