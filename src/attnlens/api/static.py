"""Serving the frontend: static pages from `frontend/static`, plotly.js from the Python `plotly` package,
and the API docs page with Swagger UI's assets from the `fastapi-offline` package (no npm, no CDN: all of
it works offline)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from attnlens.config import Settings

# src/attnlens/api/static.py -> the source tree's root (also /app in the Docker image).
SOURCE_ROOT = Path(__file__).resolve().parents[3]


def frontend_dir(settings: Settings) -> Path:
    return settings.api.frontend_dir or SOURCE_ROOT / "frontend" / "static"


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def swagger_ui_assets() -> Path:
    """Swagger UI 5 (it reads OpenAPI 3.1, which FastAPI writes), as `fastapi-offline` ships it."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def mount_frontend(app: FastAPI, settings: Settings) -> None:
    """`/api/docs` with `/vendor/swagger-ui/`, `/vendor/plotly.min.js`, and the pages at `/` (mounted last,
    after the API routes)."""

    @app.get("/api/docs", include_in_schema=False)
    def read_api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/api/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/vendor/swagger-ui/favicon.png",
        )

    app.mount("/vendor/swagger-ui", StaticFiles(directory=swagger_ui_assets()), name="swagger-ui")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def read_plotly() -> FileResponse:
        return FileResponse(
            plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    folder = frontend_dir(settings)
    if folder.is_dir():
        app.mount("/", StaticFiles(directory=folder, html=True), name="frontend")
